// Larger text for the relative app (many relatives are elderly): one switch in the header,
// remembered on the device ("kinline.textSize"). The whole page scales, since every size in
// kinline.css is in rem: html[data-text-size="large"] sets the root size.

import { h } from "/static/lib/dom.js";
import { t } from "/static/lib/i18n.js";

const KEY = "kinline.textSize";

function stored() {
  try {
    return localStorage.getItem(KEY) === "large" ? "large" : "normal";
  } catch {
    return "normal";
  }
}

/** Apply the remembered size (before the first render, so nothing jumps). */
export function applyTextSize() {
  document.documentElement.dataset.textSize = stored();
}

/** The header's switch: a toggle button saying what it will do, aria-pressed when large. */
export function textSizeSwitch() {
  const button = h("button", { type: "button", class: "link-button", id: "text-size" });
  const render = () => {
    const large = document.documentElement.dataset.textSize === "large";
    button.setAttribute("aria-pressed", String(large));
    button.textContent = t("text.large");
  };
  button.addEventListener("click", () => {
    const next = document.documentElement.dataset.textSize === "large" ? "normal" : "large";
    document.documentElement.dataset.textSize = next;
    try {
      localStorage.setItem(KEY, next);
    } catch {
      // not remembered; still applied on this page
    }
    render();
  });
  render();
  return button;
}
