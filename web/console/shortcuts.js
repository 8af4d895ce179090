// Keyboard shortcuts of the duty console, and their help (the "?" button in the top bar, or
// the ? key): j / k open the next / previous conversation of the list shown (the live queue
// or the filtered list), c claims and r resolves the open conversation (as its buttons do,
// and only when they are enabled), / goes to the message search, Escape closes the help.
// A shortcut never fires while a text field, a select or an editable element has the focus,
// nor with Ctrl, Alt or Meta held (those belong to the browser).

import { h, clear } from "/static/lib/dom.js";
import { t, onLocaleChange } from "/static/lib/i18n.js";

export const KEYS = [
  ["j", "console.keys.next"],
  ["k", "console.keys.previous"],
  ["c", "console.keys.claim"],
  ["r", "console.keys.resolve"],
  ["/", "console.keys.search"],
  ["?", "console.keys.help"],
  ["Esc", "console.keys.escape"],
];

function typing(target) {
  if (!(target instanceof Element)) return false;
  return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']"));
}

export class Shortcuts {
  /** `dialog`: the help <dialog>; `button`: what opens it; `actions`: {next(step), claim(),
   * resolve(), search()}. */
  constructor({ dialog, button, actions }) {
    this.dialog = dialog;
    this.button = button;
    this.actions = actions;
    this.render();
    button.addEventListener("click", () => this.toggle());
    dialog.addEventListener("close", () => this.button.focus());
    document.addEventListener("keydown", (event) => this.onKey(event));
    onLocaleChange(() => this.render());
  }

  render() {
    this.button.setAttribute("aria-label", t("console.keys.button"));
    this.button.title = t("console.keys.button");
    clear(this.dialog);
    const rows = KEYS.map(([key, label]) => h("tr", {}, h("th", { scope: "row" }, h("kbd", {}, key)), h("td", {}, t(label))));
    this.dialog.append(
      h("h2", { id: "shortcuts-title" }, t("console.keys.title")),
      h("table", { class: "shortcut-table" }, h("tbody", {}, rows)),
      h("p", { class: "hint" }, t("console.keys.hint")),
      h("form", { method: "dialog" }, h("button", { type: "submit", class: "primary" }, t("common.close"))),
    );
  }

  toggle() {
    if (this.dialog.open) this.dialog.close();
    else this.dialog.showModal();
  }

  onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (this.dialog.open) {
      if (event.key === "?") {
        event.preventDefault();
        this.dialog.close();
      }
      return; // the dialog has Escape and its button
    }
    if (typing(event.target)) return;
    const act = {
      j: () => this.actions.next(1),
      k: () => this.actions.next(-1),
      c: () => this.actions.claim(),
      r: () => this.actions.resolve(),
      "/": () => this.actions.search(),
      "?": () => this.toggle(),
    }[event.key];
    if (!act) return;
    event.preventDefault();
    act();
  }
}
