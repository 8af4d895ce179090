// The keyword review queue (GET /flags, POST /flags/{id}/review), shared by the officer's
// console and the supervisor's monitor. A flagged message was delivered like any other; here
// staff read it in context (who wrote it, in which conversation, which categories matched)
// and mark it reviewed with a note (audited server-side). Text only (web/lib/dom.js).

import { api } from "/static/lib/api.js";
import { h, clear, show } from "/static/lib/dom.js";
import { t, tOr, errorText, formatDateTime, formatList, onLocaleChange } from "/static/lib/i18n.js";
import { toast } from "/static/console/staff.js";

/** A category's name: the catalog's for a seeded one, else the bureau's (`labels`), else its code. */
export const categoryLabel = (code, labels = {}) => tOr(`keywords.category.${code}`, labels[code] || code);

export class FlagQueue {
  /**
   * list: the <ol> of cards; empty: the "nothing to review" line; counter: where the number
   * of unreviewed flags goes (or null); state: a <select> of unreviewed | reviewed | all;
   * prison: () => the prison to list (null: all of the caller's); onOpen(conv): open it.
   */
  constructor({ list, empty, counter = null, state = null, prison = () => null, onOpen = null }) {
    this.list = list;
    this.empty = empty;
    this.counter = counter;
    this.state = state;
    this.prison = prison;
    this.onOpen = onOpen;
    this.items = [];
    this.labels = {};
    if (state) state.addEventListener("change", () => this.load());
    onLocaleChange(() => this.render());
  }

  get wanted() {
    return this.state ? this.state.value : "unreviewed";
  }

  async load() {
    const query = { state: this.wanted, limit: 100 };
    const prison = this.prison();
    if (prison) query.prison = prison;
    try {
      const got = await api.get("/flags", query);
      this.items = got.items || [];
      this.labels = got.labels || {};
    } catch (err) {
      clear(this.list).append(h("li", { class: "error" }, errorText(err)));
      return;
    }
    this.render();
    if (this.counter && this.wanted === "unreviewed") {
      this.counter.textContent = this.items.length ? String(this.items.length) : "";
    }
  }

  render() {
    clear(this.list);
    for (const item of this.items) this.list.append(this.card(item));
    show(this.empty, this.items.length === 0);
  }

  card(item) {
    const sender = item.sender || {};
    const rows = [
      ["flags.sender", `${sender.name || ""} (${tOr(`role.${sender.role}`, sender.role || "")})`],
      ["flags.at", formatDateTime(item.at)],
      ["flags.conversation", t("flags.where", { conv: item.conv, seq: item.seq })],
    ];
    const body = h("blockquote", { class: "flag-body" }, item.body);
    const open = this.onOpen
      ? h("button", { type: "button", class: "link-button", on: { click: () => this.onOpen(item.conv) } }, t("flags.open"))
      : null;
    return h(
      "li",
      { class: "flag", data: { flag: item.id } },
      h("h3", {}, t("flags.heading", { categories: formatList(item.categories.map((c) => categoryLabel(c, this.labels))) })),
      h("dl", {}, rows.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
      body,
      open,
      item.review ? this.reviewed(item.review) : this.reviewForm(item),
    );
  }

  reviewed(review) {
    return h(
      "p",
      { class: "flag-review" },
      t("flags.reviewedBy", { name: review.by.name, at: formatDateTime(review.at) }),
      " ",
      h("q", {}, review.note),
    );
  }

  reviewForm(item) {
    const error = h("p", { class: "error", role: "alert" });
    const note = h("input", {
      name: "note",
      maxlength: 1000,
      placeholder: t("flags.note"),
      aria: { label: t("flags.note") },
    });
    const button = h("button", { type: "submit", class: "primary" }, t("flags.markReviewed"));
    const form = h("form", { class: "actions flag-form" }, note, button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = note.value.trim();
      if (!text) {
        error.textContent = t("flags.noteNeeded");
        note.focus();
        return;
      }
      button.disabled = true;
      try {
        const done = await api.post(`/flags/${item.id}/review`, { note: text });
        toast(t("flags.done"));
        if (this.wanted === "unreviewed") this.items = this.items.filter((other) => other.id !== item.id);
        else this.items = this.items.map((other) => (other.id === item.id ? done : other));
        this.render();
        if (this.counter && this.wanted === "unreviewed") {
          this.counter.textContent = this.items.length ? String(this.items.length) : "";
        }
      } catch (err) {
        error.textContent = errorText(err);
        button.disabled = false;
      }
    });
    return [form, error];
  }
}
