// The landing page: translated in place, with the language switch.
import { $ } from "/static/lib/dom.js";
import { applyI18n, localeSwitcher } from "/static/lib/i18n.js";

$("#tools").append(localeSwitcher());
applyI18n(document);
