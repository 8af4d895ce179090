// Message search in the top bar (GET /search): the hits, newest first, in a panel under the
// box; each hit names the relative, the inmate and a snippet around the match, and opens
// its conversation at that message. "More results" follows the page's `next`. Everything a
// hit shows is inserted as text (dom.h children): a body with "<b>" shows those characters.
// Escape closes the panel and gives the focus back to the box.

import { api } from "/static/lib/api.js";
import { h, clear, show } from "/static/lib/dom.js";
import { t, errorText, formatDateTime, onLocaleChange } from "/static/lib/i18n.js";
import { i18nText } from "/static/console/staff.js";

const PAGE = 20;

export class MessageSearch {
  /** `form`: the search form (with an input named q); `panel`: the results container;
   * `onOpen(hit)`: open the hit's conversation at its seq. */
  constructor({ form, panel, onOpen }) {
    this.form = form;
    this.input = form.elements.q;
    this.panel = panel;
    this.onOpen = onOpen;
    this.q = "";
    this.next = null;
    this.hits = [];
    this.error = null;
    this.list = h("ol", { class: "search-hits", aria: { label: t("console.search.results") } });
    this.status = h("p", { class: "search-status", role: "status" });
    this.more = h("button", { type: "button", class: "link-button search-more", on: { click: () => this.page() } }, "");
    this.closer = h("button", { type: "button", class: "link-button search-close", on: { click: () => this.close(true) } }, "");
    panel.append(h("div", { class: "search-head" }, this.status, this.closer), this.list, this.more);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search(this.input.value);
    });
    const escape = (event) => {
      if (event.key === "Escape" && this.isOpen) {
        event.preventDefault();
        event.stopPropagation();
        this.close(true);
      }
    };
    form.addEventListener("keydown", escape);
    panel.addEventListener("keydown", escape);
    onLocaleChange(() => this.render());
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  focus() {
    this.input.focus();
    this.input.select();
  }

  close(refocus = false) {
    show(this.panel, false);
    if (refocus) this.input.focus();
  }

  async search(text) {
    this.q = text.trim();
    this.hits = [];
    this.next = null;
    this.error = null;
    await this.page();
  }

  async page() {
    const params = { q: this.q, limit: PAGE };
    if (this.next !== null) params.before = this.next;
    try {
      const got = await api.get("/search", params);
      this.hits.push(...(got.items || []));
      this.next = got.next ?? null;
      this.error = null;
    } catch (err) {
      this.error = err;
    }
    this.render();
    show(this.panel, true);
  }

  render() {
    this.list.setAttribute("aria-label", t("console.search.results"));
    this.closer.textContent = t("console.search.close");
    this.more.textContent = t("console.search.more");
    show(this.more, this.next !== null && !this.error);
    if (this.error) {
      delete this.status.dataset.i18n;
      this.status.textContent = errorText(this.error);
    } else if (!this.hits.length) {
      i18nText(this.status, "console.search.none", { q: this.q });
    } else {
      i18nText(this.status, "console.search.results");
    }
    clear(this.list);
    for (const hit of this.hits) this.list.append(this.row(hit));
  }

  row(hit) {
    const who = t("console.search.hit", {
      relative: hit.relative.name,
      inmate: hit.inmate.name,
      number: hit.inmate.number,
    });
    const open = h(
      "button",
      {
        type: "button",
        class: ["hit", `kind-${hit.kind}`],
        data: { conv: hit.conv, seq: hit.seq },
        on: {
          click: () => {
            this.close();
            this.onOpen(hit);
          },
        },
      },
      h("span", { class: "hit-who" }, who),
      hit.kind === "note" ? h("span", { class: "note-tag" }, t("console.search.note")) : null,
      h("span", { class: "snippet" }, hit.snippet),
      h("span", { class: "meta" }, hit.sender.name, " · ", h("time", { datetime: hit.at }, formatDateTime(hit.at))),
    );
    return h("li", {}, open);
  }
}
