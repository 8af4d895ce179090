// What the relative app knows, in one place, fed by the REST API and the socket. Views read
// it and subscribe to its changes (`ctx.on("messages", fn)`); they never fetch the same thing
// twice on their own.

import { api, ApiError } from "/static/lib/api.js";
import { KinlineSocket } from "/static/lib/socket.js";

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
    this.presence = new Map(); // prison id -> officers on duty
    this.typing = new Map(); // conv id -> {name, until}
    this._listeners = new Map();
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

  async load() {
    await Promise.all([this.loadLinks(), this.loadPrisons(), this.loadConversations()]);
    await Promise.all(this.verifiedInmates.map((id) => this.loadInmate(id).catch(() => null)));
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
    for (const conv of list) this.conversations.set(conv.id, conv);
    this.emit("conversations", this.conversations);
  }

  async loadInmate(id) {
    const card = await api.get(`/inmates/${id}`);
    this.inmates.set(id, card);
    this.emit("inmate", card);
    return card;
  }

  conversationOf(inmateId) {
    for (const conv of this.conversations.values()) if (conv.inmate_id === inmateId) return conv;
    return null;
  }

  /** The conversation about an inmate, opened (POST /conversations) when there is none. */
  async openConversation(inmateId) {
    const known = this.conversationOf(inmateId);
    if (known) return known;
    const conv = await api.post("/conversations", { inmate_id: inmateId });
    this.conversations.set(conv.id, conv);
    this.socket.watch(conv.id, 0);
    this.emit("conversations", this.conversations);
    return conv;
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
    socket.on("send-error", (err) => this.emit("send-error", err));
    socket.on("read", (r) => {
      if (r.user === this.userId) return;
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
    socket.on("link", async (ev) => {
      const link = this.links.find((l) => l.id === ev.id);
      if (link) {
        link.state = ev.state;
        link.reason = ev.reason ?? link.reason;
      }
      this.emit("links", this.links);
      this.emit("link", ev);
      if (ev.state === "verified" || ev.state === "revoked") {
        // permissions changed: new inmate, new prison (presence, announcements)
        await Promise.all([this.refreshMe(), this.loadLinks(), this.loadConversations()]).catch(() => null);
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
    this._listeners.clear();
  }
}
