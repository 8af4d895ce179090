// The thread list filtered and paged (GET /conversations with state, inmate, relative,
// since, until and the page's cursor): while a filter is applied, the queue panel shows the
// server's answer here instead of the live queue, "Load more" follows `next`, and Clear goes
// back to the live queue. Rows look and open like the queue's (the queue draws them).

import { api } from "/static/lib/api.js";
import { clear, show } from "/static/lib/dom.js";
import { t, errorText, onLocaleChange } from "/static/lib/i18n.js";
import { i18nText } from "/static/console/staff.js";

const PAGE = 50;
const FIELDS = ["inmate", "relative", "since", "until"];

export class ThreadBrowser {
  /** `form`: the filter form; `list`: the <ol> of results; `live`: what the live queue shows
   * (hidden while browsing); `queue`: the Queue (it keeps each row's thread and draws it). */
  constructor({ form, list, status, more, live, queue }) {
    this.form = form;
    this.list = list;
    this.status = status;
    this.more = more;
    this.live = live;
    this.queue = queue;
    this.ids = [];
    this.next = null;
    this.params = null;
    this.error = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.apply();
    });
    form.addEventListener("reset", () => setTimeout(() => this.stop(), 0));
    more.addEventListener("click", () => this.page());
    onLocaleChange(() => this.render());
  }

  get active() {
    return this.params !== null;
  }

  /** The filters as query parameters (empty fields left out); null when none is set. */
  wanted() {
    const values = new FormData(this.form);
    const params = {};
    for (const name of FIELDS) {
      const value = String(values.get(name) || "").trim();
      if (value) params[name] = value;
    }
    const state = String(values.get("state") || "open");
    if (!Object.keys(params).length && state === "open") return null;
    return { state, ...params };
  }

  async apply() {
    const params = this.wanted();
    if (params === null) {
      this.stop();
      return;
    }
    this.params = params;
    this.ids = [];
    this.next = null;
    await this.page();
  }

  stop() {
    this.params = null;
    this.ids = [];
    this.next = null;
    this.error = null;
    clear(this.list);
    show(this.list, false);
    show(this.more, false);
    show(this.status, false);
    for (const el of this.live) show(el, true);
    this.queue.render();
  }

  async page() {
    const params = { ...this.params, limit: PAGE };
    if (this.next) params.cursor = this.next;
    try {
      const got = await api.get("/conversations", params);
      for (const row of got.conversations || []) {
        this.queue.remember(row);
        this.ids.push(row.id);
      }
      this.next = got.next ?? null;
      this.error = null;
    } catch (err) {
      this.error = err;
    }
    this.render();
  }

  render() {
    if (!this.active) return;
    for (const el of this.live) show(el, false);
    show(this.list, true);
    show(this.status, true);
    clear(this.list);
    for (const id of this.ids) {
      const conv = this.queue.get(id);
      if (conv) this.list.append(this.queue.row(conv));
    }
    this.more.textContent = t("console.filters.more");
    show(this.more, this.next !== null && !this.error);
    if (this.error) {
      delete this.status.dataset.i18n;
      this.status.textContent = errorText(this.error);
    } else if (this.ids.length) {
      i18nText(this.status, "console.filters.shown", { n: this.ids.length });
    } else {
      i18nText(this.status, "console.filters.none");
    }
  }

  /** The rows shown, in order (for the next / previous shortcuts). */
  buttons() {
    return [...this.list.querySelectorAll("button.item")];
  }
}
