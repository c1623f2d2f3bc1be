import { defineConfig } from "vite";

// The console is served by the gateway (Envoy) from dist/: hashed assets under /assets/,
// index.html for every page path. No inline scripts or styles (the CSP forbids them).
export default defineConfig({
  build: {
    outDir: "dist",
    assetsDir: "assets",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
  },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
});
