// The live queue: GET /conversations once, then `conversation` events on the socket. Each
// row shows who asks about whom, the state, who holds it, and for a waiting question a wait
// timer ticking every second (red once past the response target). Rows are buttons: Tab to
// them, Enter opens the conversation.

import { api, ApiError } from "/static/lib/api.js";
import { h, clear, show } from "/static/lib/dom.js";
import { t, onLocaleChange } from "/static/lib/i18n.js";
import { clock, waitTimer, tr } from "/static/console/staff.js";

export const RESPONSE_TARGET_S = 300; // the prisons' default response target (5 minutes)

/** A thread from the API (ThreadOut) or an event, in one flat shape. */
export function thread(raw) {
  const relative = raw.relative || {};
  const officer = raw.assigned_officer || null;
  return {
    id: raw.id,
    prison_id: raw.prison_id,
    inmate_id: raw.inmate_id,
    inmate_name: raw.inmate_name || "",
    relative_id: relative.id ?? raw.relative_id,
    relative_name: relative.name || raw.relative_name || "",
    state: raw.state,
    cycle: raw.cycle,
    assigned_officer_id: officer ? officer.id : raw.assigned_officer_id ?? null,
    assigned_officer_name: officer ? officer.name : raw.assigned_officer_name ?? null,
    waiting_since: raw.waiting_since ?? null,
    first_reply_at: raw.first_reply_at ?? null,
    handover_note: raw.handover_note ?? null,
    last_seq: raw.last_seq ?? 0,
    rating: raw.rating ?? null,
  };
}

/** Learn the clock skew from a thread still waiting for its first answer. */
function learn(raw) {
  if (raw.waiting_since && !raw.first_reply_at && raw.wait_s !== null && raw.wait_s !== undefined) {
    clock.learn(raw.waiting_since, raw.wait_s);
  }
}

export class Queue {
  constructor({ list, empty, counter, meId, onOpen }) {
    this.list = list;
    this.empty = empty;
    this.counter = counter;
    this.meId = meId;
    this.onOpen = onOpen;
    this.threads = new Map();
    this.selected = null;
    this.filter = "open";
    this.unread = () => 0;
    this.onLate = () => {}; // a waiting question just passed the response target
    this.loading = null;
    this.afterRender = () => {}; // the filtered list redraws its rows too
    onLocaleChange(() => this.render());
  }

  async load() {
    // the whole open queue, page by page (issue 18: the list is paged by a cursor)
    const rows = [];
    let cursor = null;
    do {
      const got = await api.get("/conversations", { state: "open", limit: 500, ...(cursor ? { cursor } : {}) });
      rows.push(...(got.conversations || []));
      cursor = got.next ?? null;
    } while (cursor);
    // the open queue as it is now; what left it meanwhile is shown as resolved until told
    for (const conv of this.threads.values()) {
      if (conv.state === "waiting" || conv.state === "active") conv.state = "resolved";
    }
    for (const row of rows) {
      const conv = thread(row);
      learn(row);
      this.threads.set(conv.id, conv);
    }
    this.render();
    return rows.map((row) => this.threads.get(row.id));
  }

  /** Fetch one thread again (names, holder) and show it. */
  async refresh(id) {
    try {
      return this.put(await api.get(`/conversations/${id}`));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this.threads.delete(id); // no longer ours to see
        this.render();
        return null;
      }
      throw err;
    }
  }

  /** Store a thread as the API returned it (ThreadOut), without drawing the queue. */
  remember(row) {
    learn(row);
    this.threads.set(row.id, thread(row));
    return this.threads.get(row.id);
  }

  /** Store and show a thread as the API returned it (ThreadOut). */
  put(row) {
    learn(row);
    this.threads.set(row.id, thread(row));
    this.render();
    return this.threads.get(row.id);
  }

  /** Apply a `conversation` event at once (state, holder, wait start); the names of a
   * thread we did not know, or of a new holder, come with `refresh` afterwards. */
  apply(event) {
    const known = this.threads.get(event.conv);
    const conv = known
      ? { ...known }
      : thread({ id: event.conv, inmate_id: event.inmate, relative_id: event.relative, state: event.state });
    conv.state = event.state;
    const officer = event.officer ?? null;
    if (officer !== conv.assigned_officer_id) {
      conv.assigned_officer_id = officer;
      conv.assigned_officer_name = null;
    }
    if (event.cycle) conv.cycle = event.cycle;
    conv.waiting_since = event.waiting_since ?? (event.state === "waiting" || event.state === "active" ? conv.waiting_since : null);
    if (event.note) conv.handover_note = event.note;
    if (event.event === "created" || event.event === "reopened") {
      conv.first_reply_at = null;
      conv.handover_note = null;
    }
    this.threads.set(conv.id, conv);
    this.render();
    return conv;
  }

  get(id) {
    return this.threads.get(id) || null;
  }

  setFilter(filter) {
    this.filter = filter;
    this.render();
  }

  select(id) {
    this.selected = id;
    // the live queue's rows and the filtered list's (web/console/browse.js)
    for (const button of document.querySelectorAll("button.item[data-conv]")) {
      button.setAttribute("aria-current", String(Number(button.dataset.conv) === id));
    }
  }

  visible() {
    const all = [...this.threads.values()];
    const open = (c) => c.state === "waiting" || c.state === "active";
    const byWait = (a, b) =>
      (a.state === "waiting" ? 0 : 1) - (b.state === "waiting" ? 0 : 1) ||
      Date.parse(a.waiting_since || 0) - Date.parse(b.waiting_since || 0) ||
      a.id - b.id;
    if (this.filter === "mine") {
      return all.filter((c) => c.state === "active" && c.assigned_officer_id === this.meId).sort(byWait);
    }
    if (this.filter === "resolved") return all.filter((c) => c.state === "resolved").sort((a, b) => b.id - a.id);
    return all.filter(open).sort(byWait);
  }

  waitingCount() {
    return [...this.threads.values()].filter((c) => c.state === "waiting").length;
  }

  render() {
    const rows = this.visible();
    // rebuilt: keep the keyboard focus on the row it was on
    const active = document.activeElement;
    const focused = active && this.list.contains(active) ? active.dataset.conv : null;
    clear(this.list);
    for (const conv of rows) this.list.append(this.row(conv));
    if (focused) {
      const again = this.list.querySelector(`button.item[data-conv="${focused}"]`);
      if (again) again.focus({ preventScroll: true });
    }
    show(this.empty, rows.length === 0);
    const waiting = this.waitingCount();
    this.counter.textContent = waiting ? String(waiting) : "";
    this.afterRender();
  }

  row(conv) {
    const unread = this.unread(conv.id);
    const holder =
      conv.state === "active"
        ? conv.assigned_officer_id === this.meId
          ? t("console.queue.heldByMe")
          : t("console.queue.heldBy", { name: conv.assigned_officer_name || `#${conv.assigned_officer_id}` })
        : "";
    const button = h(
      "button",
      {
        type: "button",
        class: ["item", `state-${conv.state}`],
        data: { conv: conv.id, state: conv.state },
        aria: { current: String(conv.id === this.selected) },
        on: { click: () => this.onOpen(conv.id) },
      },
      h(
        "span",
        { class: "who-line" },
        t("console.queue.about", { relative: conv.relative_name, inmate: conv.inmate_name }),
        unread ? h("span", { class: "unread", aria: { label: t("console.queue.unread", { n: unread }) } }, String(unread)) : null,
      ),
    );
    // the button exists before the timer: a question already past the target is marked
    // overdue by the timer's first tick, inside waitTimer itself
    // an answered thread back in the queue (its holder went off duty) is not late: no timer
    const timer =
      conv.state === "waiting" && conv.waiting_since && !conv.first_reply_at
        ? waitTimer(conv.waiting_since, {
            target: RESPONSE_TARGET_S,
            onOverdue: () => {
              button.classList.add("overdue");
              this.onLate(conv);
            },
          })
        : h("span", { class: ["state-badge", conv.state] }, t(`convState.${conv.state}`));
    button.append(timer, h("span", { class: "meta" }, holder || t(`convState.${conv.state}`)));
    return h("li", {}, button);
  }
}

export { tr };
