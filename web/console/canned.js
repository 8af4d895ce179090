// Canned replies in the composer: type "/" and the start of a short name, pick one with the
// arrow keys (or the mouse), Enter or Tab puts its text in place of "/name". Escape closes
// the list. The replies are the prison's (GET /canned); officers manage them in their tab.

import { api } from "/static/lib/api.js";
import { h, clear, show } from "/static/lib/dom.js";
import { t, errorText, onLocaleChange } from "/static/lib/i18n.js";
import { toast, toastError } from "/static/console/staff.js";

const TOKEN = /(^|\s)\/([^\s/]*)$/; // a "/word" just before the caret

export class CannedPicker {
  constructor(textarea, list) {
    this.textarea = textarea;
    this.list = list;
    this.replies = [];
    this.matches = [];
    this.active = -1;
    this.token = null; // {start, end} of "/word" in the textarea
    textarea.addEventListener("input", () => this.update());
    textarea.addEventListener("click", () => this.update());
    textarea.addEventListener("keydown", (event) => this.keydown(event));
    // close when the focus leaves for good (a click on the list keeps it: see mousedown)
    textarea.addEventListener("blur", () =>
      setTimeout(() => document.activeElement !== textarea && this.close(), 150),
    );
  }

  /** (Re)load the replies; only the latest of overlapping loads is kept. */
  async load() {
    const generation = (this.generation = (this.generation || 0) + 1);
    try {
      const got = await api.get("/canned");
      if (generation === this.generation) this.replies = got.canned || [];
    } catch (err) {
      toastError(err);
    }
  }

  get open() {
    return !this.list.hidden;
  }

  update() {
    const { value, selectionStart, selectionEnd } = this.textarea;
    if (selectionStart !== selectionEnd) return this.close();
    const found = TOKEN.exec(value.slice(0, selectionStart));
    if (!found) return this.close();
    const word = found[2].toLowerCase();
    this.token = { start: selectionStart - found[2].length - 1, end: selectionStart };
    this.matches = this.replies
      .filter((r) => r.short_name.toLowerCase().startsWith(word))
      .slice(0, 20);
    if (!this.replies.length && !word) return this.none();
    if (!this.matches.length) return this.close();
    this.active = 0;
    this.render();
    return undefined;
  }

  render() {
    clear(this.list);
    this.matches.forEach((reply, i) => {
      const item = h(
        "li",
        {
          role: "option",
          id: `canned-${reply.id}`,
          aria: { selected: String(i === this.active) },
          data: { short: reply.short_name },
          on: {
            mousedown: (event) => {
              event.preventDefault(); // keep the focus in the textarea
              this.choose(i);
            },
          },
        },
        h("span", { class: "short" }, `/${reply.short_name}`),
        h("span", { class: "text" }, reply.body),
      );
      this.list.append(item);
    });
    show(this.list, true);
    this.textarea.setAttribute("aria-expanded", "true");
    const current = this.matches[this.active];
    if (current) this.textarea.setAttribute("aria-activedescendant", `canned-${current.id}`);
  }

  /** "/" in a prison with no canned reply yet: say where they are made (it promised some). */
  none() {
    this.matches = [];
    this.active = -1;
    clear(this.list).append(h("li", { class: "canned-none", role: "option", aria: { disabled: "true", selected: "false" } }, t("console.canned.none")));
    show(this.list, true);
    this.textarea.setAttribute("aria-expanded", "true");
    this.textarea.removeAttribute("aria-activedescendant");
  }

  close() {
    if (this.list.hidden) return;
    show(this.list, false);
    clear(this.list);
    this.matches = [];
    this.active = -1;
    this.textarea.setAttribute("aria-expanded", "false");
    this.textarea.removeAttribute("aria-activedescendant");
  }

  choose(i) {
    const reply = this.matches[i];
    if (!reply || !this.token) return;
    const { value } = this.textarea;
    const before = value.slice(0, this.token.start);
    const after = value.slice(this.token.end);
    this.textarea.value = before + reply.body + after;
    const caret = before.length + reply.body.length;
    this.textarea.setSelectionRange(caret, caret);
    this.close();
    this.textarea.dispatchEvent(new Event("input", { bubbles: true }));
    this.close();
  }

  /** Arrow keys, Enter, Tab and Escape while the list is open; true if handled. */
  keydown(event) {
    if (!this.open) return false;
    const n = this.matches.length;
    if (!n) {
      if (event.key === "Escape") {
        this.close();
        event.preventDefault();
        event.stopImmediatePropagation();
        return true;
      }
      return false; // the "none yet" hint: typing goes on
    }
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      this.active = (this.active + (event.key === "ArrowDown" ? 1 : n - 1)) % n;
      this.render();
    } else if (event.key === "Enter" || event.key === "Tab") {
      this.choose(this.active);
    } else if (event.key === "Escape") {
      this.close();
    } else {
      return false;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    return true;
  }
}

/**
 * The prison's canned replies, managed by its officers: add, edit, delete (POST /canned,
 * PUT /canned/{id}, DELETE /canned/{id}; each audited by the server). Shares its list with
 * the composer's picker, so a new reply can be used at once.
 */
export class CannedManager {
  constructor(picker, { prisons = [], names = {} } = {}) {
    this.picker = picker;
    this.prisons = prisons;
    this.form = document.getElementById("canned-form");
    this.list = document.getElementById("canned-list");
    this.error = document.getElementById("canned-error");
    this.save = document.getElementById("canned-save");
    this.cancel = document.getElementById("canned-cancel");
    const select = this.form.elements.prison_id;
    if (prisons.length > 1) {
      for (const id of prisons) select.append(h("option", { value: id }, names[id] ? names[id].name : `#${id}`));
      show(document.getElementById("canned-prison-field"), true);
    }
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.form.addEventListener("reset", () => setTimeout(() => this.editing(null), 0));
    onLocaleChange(() => this.render());
  }

  render() {
    clear(this.list);
    for (const reply of this.picker.replies) {
      this.list.append(
        h(
          "li",
          { data: { canned: reply.id } },
          h("h3", {}, `/${reply.short_name}`),
          h("p", { class: "pre" }, reply.body),
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", class: "edit", on: { click: () => this.editing(reply) } }, t("console.card.edit")),
            h("button", { type: "button", class: "danger", on: { click: (event) => this.remove(reply, event.currentTarget) } }, t("console.canned.delete")),
          ),
        ),
      );
    }
    show(document.getElementById("canned-empty"), this.picker.replies.length === 0);
  }

  editing(reply) {
    const f = this.form.elements;
    f.id.value = reply ? reply.id : "";
    f.short_name.value = reply ? reply.short_name : "";
    f.body.value = reply ? reply.body : "";
    this.error.textContent = "";
    this.save.dataset.i18n = reply ? "common.save" : "console.canned.add";
    this.save.textContent = t(this.save.dataset.i18n);
    show(this.cancel, Boolean(reply));
    if (reply) f.short_name.focus();
  }

  async submit() {
    const f = this.form.elements;
    const shortName = f.short_name.value.trim().replace(/^\//, "");
    const body = f.body.value.trim();
    if (!shortName || /\s/.test(shortName) || !body) {
      this.error.textContent = t("console.canned.invalid");
      return;
    }
    this.save.disabled = true;
    try {
      if (f.id.value) {
        await api.put(`/canned/${f.id.value}`, { short_name: shortName, body });
      } else {
        const payload = { short_name: shortName, body };
        if (this.prisons.length > 1) payload.prison_id = Number(f.prison_id.value);
        await api.post("/canned", payload);
      }
      this.form.reset();
      await this.reload();
      toast(t("common.saved"));
    } catch (err) {
      this.error.textContent = errorText(err);
    } finally {
      this.save.disabled = false;
    }
  }

  async remove(reply, button) {
    button.disabled = true;
    try {
      await api.delete(`/canned/${reply.id}`);
      await this.reload();
      toast(t("console.canned.deleted"));
    } catch (err) {
      button.disabled = false;
      toastError(err);
    }
  }

  async reload() {
    await this.picker.load();
    this.render();
  }
}
