// What the relative app knows, in one place, fed by the REST API and the socket. Views read
// it and subscribe to its changes (`ctx.on("messages", fn)`); they never fetch the same thing
// twice on their own.

import { api, ApiError } from "/static/lib/api.js";
import { KinlineSocket, newCid } from "/static/lib/socket.js";

// An opening (POST /conversations) that failed for one of these is tried again later.
const RETRIABLE = new Set(["network", "unavailable", "rate_limited", "internal"]);
// History comes in pages of this many: the latest at load, older ones as the chat scrolls up.
export const HISTORY_PAGE = 30;

export class AppState {
  constructor(me) {
    this.me = me;
    this.userId = me.user.id;
    this.socket = new KinlineSocket({ user: me.user.id });
    this.links = [];
    this.inmates = new Map(); // inmate id -> card (GET /inmates/{id})
    this.prisons = new Map(); // prison id -> {id, code, name, city}
    this.conversations = new Map(); // conv id -> conversation
    this.messages = new Map(); // conv id -> Map(seq -> message frame)
    this.readSeq = new Map(); // conv id -> highest seq read by staff
    this.ownRead = new Map(); // conv id -> highest seq this relative read (any device)
    this.oldest = new Map(); // conv id -> lowest seq loaded (older pages load on scroll)
    this.complete = new Set(); // conv ids whose history is loaded back to the start
    this._older = new Map(); // conv id -> the older page in flight
    this.presence = new Map(); // prison id -> officers on duty
    this.typing = new Map(); // conv id -> {name, until}
    // First messages about an inmate with no conversation yet: kept (in localStorage too,
    // "kinline.unopened.<user>.<cid>") until the conversation is opened, then handed to the
    // socket's outbox with the same cid. Opened again once back online.
    this.unopenedPrefix = `kinline.unopened.${this.userId}.`;
    this.unopened = this._loadUnopened(); // cid -> {inmate, cid, body, kind, queuedAt}
    this.failedSends = new Map(); // cid -> {conv, inmate, code, entry}: refused for good
    this.viewing = null; // {inmate} of the chat on screen (if any)
    this._opening = new Map(); // inmate id -> the POST /conversations in flight
    this._listeners = new Map();
    this._onOnline = () => this.openUnopened();
    window.addEventListener("online", this._onOnline);
    this._wire();
  }

  // -- change notifications -------------------------------------------------------------------

  on(what, fn) {
    if (!this._listeners.has(what)) this._listeners.set(what, new Set());
    this._listeners.get(what).add(fn);
    return () => this._listeners.get(what)?.delete(fn);
  }

  emit(what, detail) {
    for (const fn of [...(this._listeners.get(what) || [])]) fn(detail);
  }

  // -- loading --------------------------------------------------------------------------------

  get verifiedInmates() {
    return this.me.verified_inmates || [];
  }

  /** Everything the app shows at start. The socket starts once the latest page of each
   * conversation is here, resuming after it: it replays only what is newer, never the whole
   * history (older pages load as the chat scrolls up). */
  async load() {
    const others = Promise.all([this.loadLinks(), this.loadPrisons()]);
    try {
      await this.loadConversations();
      await Promise.all([...this.conversations.keys()].map((id) => this.loadLatest(id)));
    } finally {
      this.socket.start();
    }
    await others;
    await Promise.all(this.verifiedInmates.map((id) => this.loadInmate(id).catch(() => null)));
    if (this.unopened.size) this.openUnopened(); // typed before a reload, never opened
  }

  async refreshMe() {
    this.me = await api.get("/me");
    this.emit("me", this.me);
  }

  async loadLinks() {
    const reply = await api.get("/links");
    this.links = reply.links || [];
    this.emit("links", this.links);
  }

  async loadPrisons() {
    try {
      const reply = await api.get("/prisons");
      for (const prison of reply.prisons || []) this.prisons.set(prison.id, prison);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
    }
    this.emit("prisons", this.prisons);
  }

  async loadConversations() {
    const reply = await api.get("/conversations");
    const list = Array.isArray(reply) ? reply : reply.conversations || [];
    for (const conv of list) {
      this.conversations.set(conv.id, conv);
      // read receipts from before this page loaded (live `read` events only add to them)
      if ((conv.read_seq || 0) > (this.readSeq.get(conv.id) || 0)) this.readSeq.set(conv.id, conv.read_seq);
      this.markOwnRead(conv.id, conv.own_read_seq || 0);
    }
    this.emit("conversations", this.conversations);
  }

  /** The latest page of a conversation's history; its resume cursor set after it. */
  async loadLatest(convId) {
    if (this.oldest.has(convId)) return; // loaded already (the socket keeps it current)
    const page = await api.get(`/conversations/${convId}/messages`, { limit: HISTORY_PAGE });
    this._addPage(convId, page);
    this.socket.setCursor(convId, page.last_seq);
    this.emit("messages", convId);
  }

  /** The page before the oldest loaded message; false once the history is complete. */
  loadOlder(convId) {
    if (this.complete.has(convId) || !this.oldest.has(convId)) return Promise.resolve(false);
    if (!this._older.has(convId)) {
      const before = this.oldest.get(convId);
      const loading = api
        .get(`/conversations/${convId}/messages`, { before, limit: HISTORY_PAGE })
        .then((page) => {
          this._addPage(convId, page);
          this.emit("messages", convId);
          return !this.complete.has(convId);
        })
        .finally(() => this._older.delete(convId));
      this._older.set(convId, loading);
    }
    return this._older.get(convId);
  }

  _addPage(convId, page) {
    if (!this.messages.has(convId)) this.messages.set(convId, new Map());
    const byseq = this.messages.get(convId);
    for (const m of page.messages) if (!byseq.has(m.seq)) byseq.set(m.seq, { type: "message", ...m });
    const seqs = page.messages.map((m) => m.seq);
    const lowest = Math.min(this.oldest.get(convId) ?? Infinity, ...seqs);
    this.oldest.set(convId, Number.isFinite(lowest) ? lowest : 1);
    if (page.messages.length < HISTORY_PAGE || lowest <= 1) this.complete.add(convId);
  }

  /** The relative read a conversation up to `seq` (here, or on another device). */
  markOwnRead(convId, seq) {
    if (seq <= (this.ownRead.get(convId) || 0)) return;
    this.ownRead.set(convId, seq);
    this.emit("unread", convId);
  }

  /** Answers not read yet, in one conversation: others' messages past the own read mark.
   * `more` says the count may be higher (unread messages older than what is loaded). */
  unreadIn(convId) {
    const read = this.ownRead.get(convId) || 0;
    let n = 0;
    for (const m of this.messagesOf(convId)) {
      if (m.seq > read && m.sender && m.sender.id !== this.userId && m.kind !== "note") n += 1;
    }
    const more = !this.complete.has(convId) && (this.oldest.get(convId) || 1) > read + 1;
    return { n, more };
  }

  /** Unread answers across all conversations (the title count). */
  unreadTotal() {
    let n = 0;
    for (const id of this.conversations.keys()) n += this.unreadIn(id).n;
    return n;
  }

  /** The newest message of a conversation, if any is loaded. */
  lastMessage(convId) {
    const all = this.messagesOf(convId);
    return all.length ? all[all.length - 1] : null;
  }

  async loadInmate(id) {
    const card = await api.get(`/inmates/${id}`);
    this.inmates.set(id, card);
    this.emit("inmate", card);
    return card;
  }

  conversationOf(inmateId) {
    let found = null;
    for (const conv of this.conversations.values()) {
      if (conv.inmate_id !== inmateId) continue;
      if (conv.shared) return conv; // a family case's shared thread (issue 15) is the one to talk in
      found = found || conv;
    }
    return found;
  }

  /** The conversation about an inmate, opened (POST /conversations) when there is none.
   * One request at a time per inmate: a second caller gets the same answer. */
  openConversation(inmateId) {
    const known = this.conversationOf(inmateId);
    if (known) return Promise.resolve(known);
    if (!this._opening.has(inmateId)) {
      const opening = (async () => {
        const conv = await api.post("/conversations", { inmate_id: inmateId });
        this.conversations.set(conv.id, conv);
        this.oldest.set(conv.id, 1);
        this.complete.add(conv.id); // new: nothing older to load
        this.socket.watch(conv.id, 0);
        this.emit("conversations", this.conversations);
        return conv;
      })();
      this._opening.set(inmateId, opening);
      opening.then(
        () => this._opening.delete(inmateId),
        () => this._opening.delete(inmateId),
      );
    }
    return this._opening.get(inmateId);
  }

  /** Send a message about an inmate: into the socket's outbox when the conversation exists,
   * else kept (as "sending") while it is opened, then sent with the same cid. */
  sendAbout(inmateId, body, attachments = []) {
    const conv = this.conversationOf(inmateId);
    if (conv) return this.socket.send(conv.id, body, { attachments });
    const entry = { inmate: inmateId, cid: newCid(), body, kind: "text", queuedAt: new Date().toISOString() };
    if (attachments.length) entry.attachments = attachments;
    this.unopened.set(entry.cid, entry);
    this._storeUnopened(entry);
    this.emit("outbox");
    this.openUnopened();
    return entry;
  }

  /** First messages still waiting for their conversation, about one inmate, oldest first. */
  unopenedAbout(inmateId) {
    return [...this.unopened.values()].filter((e) => e.inmate === inmateId);
  }

  /** Open the conversations that first messages wait for, and send those messages. A
   * failure to reach the server keeps them (tried again once online or reconnected); a
   * refusal fails them, with its reason. */
  async openUnopened() {
    const inmates = new Set([...this.unopened.values()].map((e) => e.inmate));
    for (const inmate of inmates) {
      let conv;
      try {
        conv = await this.openConversation(inmate);
      } catch (err) {
        const code = (err && err.code) || "internal";
        if (RETRIABLE.has(code) || !(err instanceof ApiError)) continue;
        for (const entry of this.unopenedAbout(inmate)) {
          this._dropUnopened(entry.cid);
          this.failedSends.set(entry.cid, { conv: null, inmate, code, entry });
          this.emit("send-error", { cid: entry.cid, conv: null, inmate, code, entry });
        }
        this.emit("outbox");
        continue;
      }
      for (const entry of this.unopenedAbout(inmate)) {
        this._dropUnopened(entry.cid);
        if (!this.socket.pending().some((e) => e.cid === entry.cid)) {
          this.socket.send(conv.id, entry.body, { cid: entry.cid, attachments: entry.attachments || [] });
        }
      }
      this.emit("outbox");
    }
  }

  _loadUnopened() {
    const found = [];
    try {
      for (let i = 0; i < localStorage.length; i += 1) {
        const key = localStorage.key(i);
        if (!key || !key.startsWith(this.unopenedPrefix)) continue;
        try {
          const e = JSON.parse(localStorage.getItem(key));
          if (e && Number.isInteger(e.inmate) && typeof e.cid === "string" && typeof e.body === "string") {
            const entry = { inmate: e.inmate, cid: e.cid, body: e.body, kind: "text", queuedAt: e.queuedAt || "" };
            if (Array.isArray(e.attachments) && e.attachments.length) entry.attachments = e.attachments;
            found.push(entry);
          }
        } catch {
          // unreadable: skipped
        }
      }
    } catch {
      // storage disabled
    }
    found.sort((a, b) => (a.queuedAt < b.queuedAt ? -1 : a.queuedAt > b.queuedAt ? 1 : 0));
    return new Map(found.map((e) => [e.cid, e]));
  }

  _storeUnopened(entry) {
    try {
      localStorage.setItem(this.unopenedPrefix + entry.cid, JSON.stringify(entry));
    } catch {
      // kept in memory only
    }
  }

  _dropUnopened(cid) {
    this.unopened.delete(cid);
    try {
      localStorage.removeItem(this.unopenedPrefix + cid);
    } catch {
      // storage disabled
    }
  }

  prisonOfInmate(inmateId) {
    const card = this.inmates.get(inmateId);
    if (card) return card.prison_id;
    const link = this.links.find((l) => l.inmate_id === inmateId);
    return link ? link.prison_id ?? null : null;
  }

  inmateLabel(inmateId) {
    const card = this.inmates.get(inmateId);
    if (card) return { name: card.name, number: card.number };
    const link = this.links.find((l) => l.inmate_id === inmateId);
    return { name: link ? link.inmate_number : `#${inmateId}`, number: link ? link.inmate_number : "" };
  }

  /** Prisons where this relative has a verified inmate (ids). */
  followedPrisons() {
    const ids = new Set();
    for (const id of this.verifiedInmates) {
      const prison = this.prisonOfInmate(id);
      if (prison) ids.add(prison);
    }
    return [...ids];
  }

  // -- the socket -----------------------------------------------------------------------------

  _wire() {
    const socket = this.socket;
    socket.on("message", (m) => {
      if (!this.messages.has(m.conv)) this.messages.set(m.conv, new Map());
      this.messages.get(m.conv).set(m.seq, m);
      if (m.sender && m.sender.id !== this.userId) this.typing.delete(m.conv);
      const conv = this.conversations.get(m.conv);
      if (conv && m.seq > (conv.last_seq || 0)) conv.last_seq = m.seq;
      this.emit("messages", m.conv);
    });
    socket.on("ack", (ack) => {
      // acked: committed. Its message usually follows at once; until then, show the entry
      // as the stored message (the real frame replaces it: same seq).
      const stored = this.messages.get(ack.conv);
      if (ack.entry && !(stored && stored.has(ack.seq))) {
        if (!stored) this.messages.set(ack.conv, new Map());
        this.messages.get(ack.conv).set(ack.seq, {
          type: "message",
          conv: ack.conv,
          seq: ack.seq,
          id: ack.id,
          sender: { id: this.userId, role: "relative", name: this.me.user.name },
          kind: ack.entry.kind,
          body: ack.entry.body,
          at: ack.at,
          cid: ack.cid,
        });
      }
      this.emit("messages", ack.conv);
    });
    socket.on("outbox", () => this.emit("outbox"));
    socket.on("send-error", (err) => {
      // kept until the page is left: shown by the chat of that conversation whenever it opens
      this.failedSends.set(err.cid, { conv: err.conv, inmate: null, code: err.code, entry: err.entry });
      this.emit("send-error", err);
    });
    socket.on("status", (status) => {
      if (status.state === "connected" && this.unopened.size) this.openUnopened();
    });
    socket.on("read", (r) => {
      if (r.user === this.userId) {
        this.markOwnRead(r.conv, r.seq); // read on another device
        return;
      }
      if (r.seq > (this.readSeq.get(r.conv) || 0)) this.readSeq.set(r.conv, r.seq);
      this.emit("messages", r.conv);
    });
    socket.on("typing", (ev) => {
      if (ev.user.id === this.userId) return;
      this.typing.set(ev.conv, { name: ev.user.name, role: ev.user.role, until: Date.now() + 4000 });
      this.emit("typing", ev.conv);
    });
    socket.on("presence", (p) => {
      this.presence.set(p.prison, p.on_duty);
      this.emit("presence", p.prison);
    });
    socket.on("conversation", (ev) => {
      const conv = this.conversations.get(ev.conv) || { id: ev.conv, inmate_id: ev.inmate };
      conv.state = ev.state;
      if (ev.cycle !== undefined && ev.cycle !== null) conv.cycle = ev.cycle;
      if (ev.event === "resolved") conv.rating = null; // this cycle: not rated yet
      this.conversations.set(ev.conv, conv);
      this.emit("conversation", ev);
    });
    socket.on("info", (ev) => {
      if (this.inmates.has(ev.inmate)) this.loadInmate(ev.inmate).catch(() => null);
      this.emit("info", ev);
    });
    socket.on("visit", (ev) => this.emit("visit", ev));
    socket.on("announcement", (ev) => this.emit("announcement", ev));
    socket.on("complaint", (ev) => this.emit("complaint", ev));
    socket.on("opening", (ev) => this.emit("opening", ev)); // a supervisor opened a conversation
    socket.on("link", async (ev) => {
      const link = this.links.find((l) => l.id === ev.id);
      if (link) {
        link.state = ev.state;
        link.reason = ev.reason ?? link.reason;
        link.reason_code = ev.reason_code ?? link.reason_code;
      }
      this.emit("links", this.links);
      this.emit("link", ev);
      if (ev.state === "verified" || ev.state === "revoked") {
        // permissions changed: new inmate, new prison (presence, announcements)
        await Promise.all([this.refreshMe(), this.loadLinks(), this.loadConversations()]).catch(() => null);
        await Promise.all([...this.conversations.keys()].map((id) => this.loadLatest(id).catch(() => null)));
        await Promise.all(this.verifiedInmates.map((id) => this.loadInmate(id).catch(() => null)));
        this.socket.reconnect();
        this.emit("me", this.me);
      }
    });
  }

  /** Messages of a conversation in seq order. */
  messagesOf(conv) {
    const byseq = this.messages.get(conv);
    return byseq ? [...byseq.values()].sort((a, b) => a.seq - b.seq) : [];
  }

  stop() {
    this.socket.stop();
    window.removeEventListener("online", this._onOnline);
    this._listeners.clear();
  }
}
