import { render } from "preact";
import { App } from "./app";
import { lang } from "./i18n";
import "./style.css";

document.documentElement.lang = lang.get();
render(<App />, document.getElementById("app")!);
