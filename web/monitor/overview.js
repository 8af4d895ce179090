// The live overview of one prison (GET /overview?prison=), and watching a conversation.
//
// The socket is open before the overview loads (a supervisor's socket joins the prison's
// staff topic on connect), so no change falls between the two; `conversation` and
// `presence` events then trigger a fresh overview (coalesced: at most one request in flight
// and one queued), and the wait timers tick every second in between.
//
// Watching is read-only by construction: there is no composer, no typing or read frame is
// ever sent. History over REST first, then `watch {conv, after: last seq}` so the stream
// continues exactly where the history ended. Both are audited by the server.

import { api } from "/static/lib/api.js";
import { h, clear, show } from "/static/lib/dom.js";
import { t, formatDateTime, formatDuration, formatList, onLocaleChange } from "/static/lib/i18n.js";
import { clock, i18nText, toastError, waitTimer } from "/static/console/staff.js";
import { late } from "/static/console/alerts.js";
import { Thread } from "/static/console/thread.js";

const STATES = ["new", "waiting", "active", "resolved"];
const HISTORY_PAGE = 100;
const TYPING_SHOWN_MS = 4000;

export class Overview {
  constructor({ socket, prison }) {
    this.socket = socket;
    this.prison = prison;
    this.data = null;
    this.threads = new Map(); // id -> ThreadOut, the conversation list
    this.filter = "open";
    this.watched = null;
    this.thread = new Thread(document.getElementById("watch-messages"));
    this.inflight = null;
    this.again = false;
    this.typingTimer = null;
    onLocaleChange(() => this.render());

    socket.on("conversation", async (event) => {
      if (this.matches(event)) this.refresh();
      if (event.conv === this.watched) {
        try {
          this.threads.set(event.conv, await api.get(`/conversations/${event.conv}`));
        } catch {
          // shown as it was; the next change brings it up to date
        }
        if (event.conv === this.watched) this.renderWatchHead();
      }
    });
    socket.on("presence", (event) => {
      if (event.prison !== this.prison || !this.data) return;
      this.data.on_duty = { count: event.on_duty, officers: event.officers || [] };
      this.renderOnDuty();
    });
    socket.on("message", (message) => {
      if (message.conv === this.watched) this.thread.add(message);
    });
    socket.on("typing", (event) => {
      if (event.conv !== this.watched) return;
      const el = document.getElementById("watch-typing");
      i18nText(el, "console.chat.typing", { name: event.user.name });
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => {
        el.textContent = "";
        delete el.dataset.i18n;
      }, TYPING_SHOWN_MS);
    });
    for (const radio of document.querySelectorAll('input[name="conv-filter"]')) {
      radio.addEventListener("change", () => {
        this.filter = radio.value;
        this.loadThreads();
      });
    }
    document.getElementById("watch-close").addEventListener("click", () => this.stopWatching());
  }

  matches(event) {
    const known = this.threads.get(event.conv);
    return !known || known.prison_id === this.prison || event.conv === this.watched;
  }

  setPrison(prison) {
    this.prison = prison;
    this.stopWatching();
    this.refresh();
  }

  /** Load the overview and the conversation list (coalesced). */
  refresh() {
    if (this.inflight) {
      this.again = true;
      return this.inflight;
    }
    this.inflight = (async () => {
      try {
        const [data] = await Promise.all([api.get("/overview", { prison: this.prison }), this.loadThreads(false)]);
        this.data = data;
        this.render();
      } catch (err) {
        toastError(err);
      } finally {
        this.inflight = null;
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      }
    })();
    return this.inflight;
  }

  async loadThreads(render = true) {
    try {
      const got = await api.get("/conversations", { prison: this.prison, state: this.filter, limit: 200 });
      const watched = this.threads.get(this.watched);
      this.threads = new Map((got.conversations || []).map((c) => [c.id, c]));
      if (watched && !this.threads.has(watched.id)) this.threads.set(watched.id, watched);
      for (const c of this.threads.values()) {
        if (c.state === "waiting" && c.waiting_since && !c.first_reply_at) clock.learn(c.waiting_since, c.wait_s);
      }
    } catch (err) {
      toastError(err);
    }
    if (render) this.renderThreads();
  }

  render() {
    if (!this.data) return;
    const d = this.data;
    const states = document.getElementById("states");
    clear(states);
    for (const state of STATES) {
      states.append(
        h(
          "li",
          { class: ["state", `state-${state}`], data: { state } },
          h("span", { class: "n" }, String(d.conversations[state] ?? 0)),
          h("span", { class: "label" }, t(`convState.${state}`)),
        ),
      );
    }
    states.append(
      h(
        "li",
        { class: ["state", "state-complaints", d.complaints_overdue ? "alert" : null], data: { state: "complaints-overdue" } },
        h("span", { class: "n" }, String(d.complaints_overdue)),
        h("span", { class: "label" }, t("monitor.complaintsOverdue")),
      ),
    );
    i18nText(document.getElementById("target"), "monitor.target", { t: formatDuration(d.response_target_s) });
    this.renderOnDuty();
    this.list("waiting", d.queue, (w) => [
      h("span", { class: "who-line" }, t("console.queue.about", { relative: w.relative_name, inmate: w.inmate_name })),
      waitTimer(w.waiting_since, {
        target: d.response_target_s,
        // the supervisor is told too, once per question, as the desk is
        onOverdue: () =>
          late.alert(
            `${w.conversation_id}:${w.cycle ?? w.waiting_since}`,
            t("console.late.title"),
            t("console.late.body", { relative: w.relative_name || "", inmate: w.inmate_name || "" }),
          ),
      }),
    ]);
    this.list("late-now", d.late_now, (u) => [
      h("span", { class: "who-line" }, this.label(u.conversation_id)),
      h("span", { class: "meta" }, t(`convState.${u.state}`)),
      waitTimer(u.waiting_since, { target: d.response_target_s }),
    ]);
    this.list("late-today", d.late_today, (a) => [
      h("span", { class: "who-line" }, this.label(a.conversation_id)),
      h("span", { class: "meta" }, t("monitor.answeredAfter", { t: formatDuration(a.response_s), at: formatDateTime(a.waiting_since) })),
    ]);
    this.renderThreads();
    if (this.watched !== null) this.renderWatchHead();
  }

  label(convId) {
    const c = this.threads.get(convId);
    return c ? t("console.queue.about", { relative: c.relative.name, inmate: c.inmate_name }) : t("monitor.conversation", { id: convId });
  }

  renderOnDuty() {
    const el = document.getElementById("on-duty");
    const duty = this.data.on_duty;
    const names = formatList((duty.officers || []).map((o) => o.name));
    const count = t("monitor.onDutyCount", { n: duty.count });
    el.textContent = duty.count ? (names ? t("monitor.onDutyNames", { count, names }) : count) : t("monitor.noneOnDuty");
  }

  /** An <ol> of conversations as buttons that open the watch pane. */
  list(id, rows, content) {
    const ol = document.getElementById(id);
    clear(ol);
    for (const row of rows) {
      const conv = row.conversation_id ?? row.id;
      ol.append(
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: ["item", row.over_target ? "overdue" : null],
              data: { conv },
              aria: { current: String(conv === this.watched) },
              on: { click: () => this.watch(conv) },
            },
            content(row),
          ),
        ),
      );
    }
    show(document.getElementById(`${id}-empty`), rows.length === 0);
  }

  renderThreads() {
    const rows = [...this.threads.values()].filter((c) => this.filter === "all" || c.state === "waiting" || c.state === "active");
    this.list("conversations", rows, (c) => [
      h("span", { class: "who-line" }, t("console.queue.about", { relative: c.relative.name, inmate: c.inmate_name })),
      h("span", { class: ["state-badge", c.state] }, t(`convState.${c.state}`)),
      h(
        "span",
        { class: "meta" },
        c.assigned_officer ? t("console.queue.heldBy", { name: c.assigned_officer.name }) : "",
      ),
    ]);
  }

  // -- watching -----------------------------------------------------------------------------

  async watch(conv) {
    if (this.watched === conv) return;
    this.stopWatching(false);
    this.watched = conv;
    this.thread.reset(conv);
    show(document.getElementById("watch-none"), false);
    show(document.getElementById("watch-open"), true);
    if (window.matchMedia("(max-width: 900px)").matches) {
      document.getElementById("watch").scrollIntoView({ block: "start" }); // one column: go there
    }
    for (const b of document.querySelectorAll("#panel-overview button.item")) {
      b.setAttribute("aria-current", String(Number(b.dataset.conv) === conv));
    }
    if (!this.threads.has(conv)) {
      try {
        this.threads.set(conv, await api.get(`/conversations/${conv}`));
      } catch (err) {
        if (this.watched === conv) toastError(err);
      }
      if (this.watched !== conv) return; // another one was chosen (or none) meanwhile
    }
    this.renderWatchHead();
    // Only the conversation still shown is watched, from its own history's end: after a
    // switch (or "stop watching") while this history loaded, nothing is watched for it.
    let after;
    try {
      const page = await api.get(`/conversations/${conv}/messages`, { limit: HISTORY_PAGE });
      if (this.watched !== conv) return;
      this.thread.add(...(page.messages || []));
      after = page.last_seq ?? this.thread.lastSeq;
    } catch (err) {
      if (this.watched !== conv) return;
      toastError(err);
      after = this.thread.lastSeq; // this conversation's thread (reset for it above)
    }
    this.socket.watch(conv, after);
    document.body.dataset.watching = String(conv);
  }

  stopWatching(hide = true) {
    if (this.watched !== null) this.socket.unwatch(this.watched);
    this.watched = null;
    delete document.body.dataset.watching;
    if (hide) {
      show(document.getElementById("watch-none"), true);
      show(document.getElementById("watch-open"), false);
      this.thread.reset(null);
    }
  }

  renderWatchHead() {
    const c = this.threads.get(this.watched);
    if (!c) return;
    document.getElementById("watch-title").textContent = t("console.chat.title", { relative: c.relative.name, inmate: c.inmate_name });
    const sub = document.getElementById("watch-sub");
    clear(sub).append(h("span", { class: ["state-badge", c.state] }, t(`convState.${c.state}`)));
    if (c.assigned_officer) sub.append(" · ", t("console.queue.heldBy", { name: c.assigned_officer.name }));
    // the transcript for a complaint file (a download or a printable page; an audited look)
    const base = `/api/v1/conversations/${c.id}/transcript`;
    sub.append(
      " · ",
      h("a", { href: `${base}?format=csv`, download: "", id: "watch-transcript-csv" }, t("monitor.export.csv")),
      " · ",
      h("a", { href: `${base}?format=html`, target: "_blank", rel: "noopener", id: "watch-transcript-print" }, t("monitor.export.print")),
      " · ",
      h("a", { href: `/api/v1/conversations/${c.id}/export`, download: "", id: "watch-record", title: t("record.what") }, t("record.download")),
    );
  }
}
