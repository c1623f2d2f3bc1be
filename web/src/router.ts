// Pages are paths (/files/<folder>, /s/<token>, /reactivate?token=…): the gateway answers each
// with the console, and the history API moves between them without a reload.
import { signal } from "./state";

export interface Location {
  path: string;
  query: URLSearchParams;
}

function current(): Location {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search) };
}

export const location = signal<Location>(current());

window.addEventListener("popstate", () => location.set(current()));

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  location.set(current());
  window.scrollTo(0, 0);
}

/** A click on a link to one of the console's pages stays in the page. */
export function follow(event: MouseEvent): void {
  const anchor = (event.target as HTMLElement).closest("a");
  if (!anchor || anchor.target || anchor.hasAttribute("download") || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const url = new URL(anchor.href);
  if (url.origin !== window.location.origin) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}
