// Moderating comments on announcements (GET /comments, POST /comments/{id}/approve|reject):
// the pending comments of the announcements this officer (its prisons) or the admin (every
// one) moderates, each with its announcement's title, the author and the text, and two
// buttons. A comment is shown to others only once approved. Used by the console and /admin.

import { api } from "/static/lib/api.js";
import { h, replace } from "/static/lib/dom.js";
import { t, errorText, formatDateTime } from "/static/lib/i18n.js";

export class CommentQueue {
  /** list: an <ol>; empty: the "nothing to moderate" element; onCount(n): pending count. */
  constructor({ list, empty, onCount = () => {} }) {
    this.list = list;
    this.empty = empty;
    this.onCount = onCount;
    this.items = [];
    this.error = null;
  }

  async load() {
    try {
      const got = await api.get("/comments", { state: "pending", limit: 100 });
      this.items = got.items || [];
      this.error = null;
    } catch (err) {
      this.error = errorText(err);
    }
    this.render();
  }

  async decide(comment, verb, card) {
    const buttons = card.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await api.post(`/comments/${comment.id}/${verb}`);
      this.items = this.items.filter((c) => c.id !== comment.id);
      this.render();
    } catch (err) {
      buttons.forEach((b) => (b.disabled = false));
      const out = card.querySelector(".error");
      if (out) out.textContent = errorText(err);
    }
  }

  render() {
    this.onCount(this.items.length);
    this.empty.hidden = this.items.length > 0 || Boolean(this.error);
    if (this.error) {
      replace(this.list, h("li", { class: "error", role: "alert" }, this.error));
      return;
    }
    replace(
      this.list,
      this.items.map((c) => {
        const card = h(
          "li",
          { class: "card comment", data: { comment: c.id } },
          h("p", { class: "sub" }, t("comments.on", { title: c.announcement_title })),
          h("p", { class: "who" }, t("comments.by", { name: c.author, at: formatDateTime(c.at) })),
          h("p", { class: "comment-body" }, c.body),
          h("p", { class: "error", role: "alert" }),
        );
        card.append(
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", class: "primary", on: { click: () => this.decide(c, "approve", card) } }, t("comments.approve")),
            h("button", { type: "button", on: { click: () => this.decide(c, "reject", card) } }, t("comments.reject")),
          ),
        );
        return card;
      }),
    );
  }
}
