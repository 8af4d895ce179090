// A conversation's messages as staff see them, for the console (with our own pending sends)
// and the monitor (read-only). Messages are kept by seq: history pages, live messages and
// replays can arrive in any order and twice, and each is shown once, in seq order.
//
// Every body is inserted as text (dom.h children): "<script>" shows as those characters.
// Notes (kind "note") look nothing like replies: a dashed yellow card tagged "internal note,
// staff only"; system messages (fact cards) are centred grey cards. A message's files show as
// thumbnails that open the full image, and PDFs as links that download them.

import { h, clear, setText } from "/static/lib/dom.js";
import { t, errorText, formatDateTime, formatTime, onLocaleChange } from "/static/lib/i18n.js";
import { tr } from "/static/console/staff.js";
import { shownBody } from "/static/lib/facts.js";
import { attachmentList } from "/static/lib/attachments.js";

const STAFF_ROLES = new Set(["officer", "supervisor", "admin"]);

export class Thread {
  /** `list`: the <ol>; `meId`: the viewer (its own messages are marked). */
  constructor(list, { meId = null } = {}) {
    this.list = list;
    this.meId = meId;
    this.conv = null;
    this.bySeq = new Map(); // seq -> {message, el}
    this.pending = new Map(); // cid -> el (our sends not yet seen as messages)
    this.seenCids = new Set();
    onLocaleChange(() => this.rerender());
  }

  /** Show another conversation (or none). */
  reset(conv) {
    this.conv = conv;
    this.bySeq.clear();
    this.pending.clear();
    this.seenCids.clear();
    clear(this.list);
  }

  get lastSeq() {
    let last = 0;
    for (const seq of this.bySeq.keys()) last = Math.max(last, seq);
    return last;
  }

  get firstSeq() {
    let first = Infinity;
    for (const seq of this.bySeq.keys()) first = Math.min(first, seq);
    return first === Infinity ? 0 : first;
  }

  _nearBottom() {
    const l = this.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }

  _scrollDown() {
    this.list.scrollTop = this.list.scrollHeight;
  }

  /** Add messages (event frames or history rows, normalized); duplicates are ignored. */
  add(...messages) {
    const stick = this._nearBottom();
    for (const raw of messages) {
      const message = normalize(raw);
      if (message.conv !== this.conv || this.bySeq.has(message.seq)) continue;
      const el = this._render(message);
      if (message.cid && this.pending.has(message.cid)) {
        this.pending.get(message.cid).remove();
        this.pending.delete(message.cid);
      }
      if (message.cid) this.seenCids.add(message.cid);
      const after = [...this.bySeq.entries()]
        .filter(([seq]) => seq > message.seq)
        .sort((a, b) => a[0] - b[0])[0];
      const firstPending = this.pending.values().next().value || null;
      this.list.insertBefore(el, after ? after[1].el : firstPending);
      this.bySeq.set(message.seq, { message, el });
    }
    if (stick) this._scrollDown();
  }

  /** One of our sends, shown as "sending" until its message arrives. */
  addPending(entry, sender) {
    if (entry.conv !== this.conv || this.seenCids.has(entry.cid) || this.pending.has(entry.cid)) return;
    const el = this._render({
      conv: entry.conv,
      seq: null,
      cid: entry.cid,
      kind: entry.kind || "text",
      body: entry.body,
      at: entry.queuedAt,
      sender,
      attachments: entry.attachments || [],
    });
    el.classList.add("pending");
    const status = tr("span", "console.msg.sending", { class: "status" });
    el.append(status);
    this.list.append(el);
    this.pending.set(entry.cid, el);
    this._scrollDown();
  }

  /** A send the server refused: say why, by its code. */
  failed(cid, error) {
    const el = this.pending.get(cid);
    if (!el) return;
    el.classList.remove("pending");
    el.classList.add("failed");
    const status = el.querySelector(".status");
    delete status.dataset.i18n;
    setText(status, `${t("console.msg.failed")}: ${errorText(error)}`);
  }

  /** Render every message again (after a language switch). */
  rerender() {
    for (const entry of this.bySeq.values()) {
      const el = this._render(entry.message);
      entry.el.replaceWith(el);
      entry.el = el;
      this._markDelivery(entry);
    }
  }

  /** How each answer's notification reached the relative (GET .../deliveries items). */
  showDeliveries(items) {
    for (const delivery of items) {
      const entry = delivery.seq === null ? null : this.bySeq.get(delivery.seq);
      if (!entry) continue;
      entry.delivery = delivery;
      this._markDelivery(entry);
    }
  }

  _markDelivery(entry) {
    const d = entry.delivery;
    if (!d) return;
    let el = entry.el.querySelector(".delivery");
    if (!el) {
      el = h("span", { class: "delivery" });
      entry.el.append(el);
    }
    el.dataset.state = d.state;
    el.dataset.channel = d.channel || "";
    setText(el, t(d.state === "sent" ? `console.delivery.sent.${d.channel}` : `console.delivery.${d.state}`));
    el.title = d.detail || "";
  }

  _render(m) {
    const staff = m.sender && STAFF_ROLES.has(m.sender.role);
    const classes = ["msg", `kind-${m.kind}`, staff ? "from-staff" : "from-relative"];
    if (this.meId !== null && m.sender && m.sender.id === this.meId) classes.push("own");
    const who = m.kind === "system" ? t("console.msg.system") : m.sender ? m.sender.name : "";
    const meta = h("span", { class: "meta" }, who, " · ", h("time", { datetime: m.at }, formatTime(m.at)));
    meta.title = formatDateTime(m.at);
    const parts = [];
    if (m.kind === "note") parts.push(h("span", { class: "note-tag" }, t("console.msg.noteTag")));
    parts.push(h("div", { class: "bubble" }, shownBody(m.kind, m.body), attachmentList(m.attachments)));
    parts.push(meta);
    return h("li", { class: classes, data: { seq: m.seq, kind: m.kind, cid: m.cid || null } }, parts);
  }
}

/** A `message` frame or a history row -> {conv, seq, id, sender{id,role,name}, kind, body, at, cid}. */
export function normalize(raw) {
  if (raw.sender && typeof raw.sender === "object") return { ...raw, conv: raw.conv ?? raw.conversation_id };
  return {
    conv: raw.conv ?? raw.conversation_id,
    seq: raw.seq,
    id: raw.id,
    sender: {
      id: raw.sender_id,
      role: raw.sender_role,
      name: raw.sender_name || "",
    },
    kind: raw.kind || "text",
    body: raw.body,
    at: raw.at || raw.created_at,
    cid: raw.cid || "",
    attachments: raw.attachments || [],
  };
}
