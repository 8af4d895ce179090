// A kinline.v1 client for the browser: the JavaScript twin of channels/client.py.
//
//   import { KinlineSocket } from "/static/lib/socket.js";
//   const socket = new KinlineSocket({ user: me.user.id });   // outbox kept per user
//   socket.on("message", (m) => render(m));                     // any server frame type
//   socket.on("status", (s) => banner(s.state));                // connecting|connected|reconnecting|closed
//   socket.on("ack", (a) => markSent(a.cid, a.seq));
//   socket.on("send-error", (e) => markFailed(e.cid, e.code));
//   socket.start();
//   const { cid } = socket.send(conv, "hello");                 // kept until acked, even offline
//
// Guarantees (the same as the Python client's):
// * Reconnect until stopped. After a lost connection (1006), a restart (1012), "too slow"
//   (4008) or any other non-final close, it reconnects with jittered exponential back-off
//   (`backoffBase` ms doubling up to `backoffCap`; each delay uniform in [d/2, d]). The
//   back-off resets once a connection is welcomed, unless it then ends with 4429, 4409 or
//   1011 or 1013. Closes 1000, 4401 and 4403 are final. A browser cannot see the HTTP status of a
//   refused handshake (it reports 1006), so after a socket that never opened the client asks
//   GET /api/v1/me: a 401 there is the final 4401 (signed out), anything else is retried.
//   Coming back online or to the foreground retries at once.
// * Resume by cursor. `cursors` holds, per conversation, the highest seq of a message
//   dispatched to the page. Every (re)connect says hello {resume: cursors} first (the 1000
//   most recently advanced), then re-sends its watches (with after = cursor); the server
//   replays what was missed. A message at or below the cursor is a duplicate and is dropped:
//   subscribers see each message once and in order. A page that loaded history over REST
//   calls setCursor(conv, lastSeq) before start(). (The server replays a relative's own
//   conversations it names no cursor for from the start.) unwatch(conv) drops the cursor
//   too: a conversation no longer followed is never resumed (nor, for a supervisor, audited
//   as opened) again. Staff's watched conversations are resumed by their watch frames only,
//   not named in the hello as well.
// * At-least-once sends, exactly-once messages. send() puts {conv, cid, body, kind} in the
//   outbox, which is kept in localStorage, one key per entry ("kinline.outbox.<user>.<cid>"),
//   so a message typed while offline survives even a reload, and two tabs of one user never
//   overwrite each other's entries (each tab also follows the other's adds and removals
//   through the `storage` event). After every (re)connect, right after hello and watches,
//   every outboxed frame is sent again with the SAME cid; the server answers a known cid with
//   the original ack instead of storing twice. An entry leaves the outbox on its ack (or when
//   the message itself comes back with its cid), or on a final error for that cid
//   ("send-error"); on `unavailable`, `rate_limited` or `internal` it stays and is retried.
// * typing and read are sent only while connected (typing at most every 2 s per
//   conversation); the last read cursor asked for while offline is sent after reconnecting.
//
// Events (socket.on(type, fn) returns an unsubscribe):
//   every server frame by its type: welcome, message, typing, read, conversation, presence,
//   info, announcement, link, visit, complaint, error (without a cid of ours);
//   "*" gets every server frame; "ack" {cid, conv, seq, id, at, entry}; "send-error" {cid,
//   conv, code, message, entry} (entry: the outbox entry {conv, cid, body, kind, queuedAt},
//   undefined for an ack of a send this page did not make); "outbox" (the outbox changed: call socket.pending()); "status"
//   {state, code, reason, attempt, retryIn} whenever the state changes.

export const SUBPROTOCOL = "kinline.v1";
export const FINAL_CLOSE_CODES = new Set([1000, 4401, 4403]);
const KEEP_BACKING_OFF = new Set([4429, 4409, 1011, 1013]);
const RETRIABLE_SEND_ERRORS = new Set(["unavailable", "rate_limited", "internal"]);
const MAX_RESUME_ENTRIES = 1000;
const MAX_IN_FLIGHT = 200; // the server lets 256 sends await their ack per socket
const TYPING_EVERY_MS = 2000;

export function newCid() {
  if (crypto.randomUUID) return crypto.randomUUID().replaceAll("-", "");
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws`;
}

export class KinlineSocket {
  constructor({
    url = defaultUrl(),
    user = null,
    backoffBase = 500,
    backoffCap = 5000,
    meUrl = "/api/v1/me",
  } = {}) {
    this.url = url;
    this.backoffBase = backoffBase;
    this.backoffCap = backoffCap;
    this.meUrl = meUrl;
    this.outboxKey = user === null ? null : `kinline.outbox.${user}`; // the legacy single key
    this.outboxPrefix = user === null ? null : `kinline.outbox.${user}.`; // + cid: one entry
    this.state = "idle"; // idle | connecting | connected | reconnecting | closed
    this.cursors = new Map(); // conv -> last seq dispatched (Map order = recency)
    this.watching = new Set();
    this._unwatched = new Set(); // convs unwatched since: their messages leave no cursor
    this.welcome = null;
    this.limits = { max_frame_bytes: 16384, max_body_chars: 2000 };
    this.reconnects = 0;
    this.duplicates = 0;
    this.final = null; // {code, reason} once stopped for good
    this._listeners = new Map();
    this._order = Date.now() * 1000; // orders this tab's sends within one millisecond
    this._outbox = this._loadOutbox(); // cid -> {conv, cid, body, kind, queuedAt, n}
    this._inflight = new Set(); // cids written on the current socket, awaiting ack
    this._reads = new Map(); // conv -> seq not yet sent
    this._typingAt = new Map(); // conv -> ms of the last typing frame
    this._ws = null;
    this._attempt = 0;
    this._timer = null;
    this._retryTimer = null;
    this._opened = 0;
    this._stopped = false;
    this._wake = () => {
      if (this._timer !== null && !this._stopped) {
        clearTimeout(this._timer);
        this._timer = null;
        this._connect();
      }
    };
  }

  // -- subscriptions --------------------------------------------------------------------------

  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this._listeners.get(type)?.delete(fn);
  }

  _emit(type, payload) {
    for (const fn of [...(this._listeners.get(type) || [])]) {
      try {
        fn(payload);
      } catch (err) {
        console.error(`kinline socket: a "${type}" listener failed`, err);
      }
    }
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit("status", { state, ...extra });
  }

  get connected() {
    return this.state === "connected";
  }

  // -- lifecycle ------------------------------------------------------------------------------

  /** Connect (and keep reconnecting until stop() or a final close). */
  start() {
    if (this._ws || this._timer !== null || this.final) return this;
    this._stopped = false;
    window.addEventListener("online", this._wake);
    window.addEventListener("storage", this._onStorage);
    document.addEventListener("visibilitychange", this._onVisible);
    this._connect();
    return this;
  }

  /** Close with 1000 and stop reconnecting; the outbox stays stored for the next page. */
  stop() {
    this._stopped = true;
    clearTimeout(this._timer);
    clearTimeout(this._retryTimer);
    this._timer = null;
    window.removeEventListener("online", this._wake);
    window.removeEventListener("storage", this._onStorage);
    document.removeEventListener("visibilitychange", this._onVisible);
    if (this._ws) this._drop(this._ws, 1000, "page closed");
    this._ws = null;
    this._finish(1000, "stopped");
  }

  /** Close a socket without its handlers running; one still connecting is closed once open
   * (closing it before that makes the browser log an error). */
  _drop(ws, code, reason) {
    ws.onclose = null;
    ws.onmessage = null;
    ws.onerror = null;
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(code, reason);
    else {
      ws.onopen = null;
      ws.close(code, reason);
    }
  }

  /** Drop the current connection and connect again at once (e.g. after permissions changed:
   * the new hello joins what may now be seen). Unacked sends are re-sent as usual. */
  reconnect() {
    if (this._stopped || this.final) return;
    if (this._timer !== null) {
      this._wake();
      return;
    }
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    this._drop(ws, 4000, "reconnecting");
    this._inflight.clear();
    this._attempt = 0;
    this._connect(true);
  }

  _onVisible = () => {
    if (document.visibilityState === "visible") this._wake();
  };

  _finish(code, reason) {
    if (this.final) return;
    this.final = { code, reason };
    this._setState("closed", { code, reason });
  }

  _connect(deliberate = false) {
    this._timer = null;
    if (this._stopped || this.final) return;
    // "reconnecting" (the banner) only after a connection was lost, not for reconnect()
    const lost = !deliberate && (this._opened || this._attempt);
    this._setState(lost ? "reconnecting" : "connecting", { attempt: this._attempt });
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (err) {
      this._finish(4403, String(err));
      return;
    }
    this._ws = ws;
    let opened = false;
    let welcomed = false;
    ws.onopen = () => {
      opened = true;
      if (this._opened) this.reconnects += 1;
      this._opened += 1;
      this._sayHello(ws);
    };
    ws.onmessage = (event) => {
      if (this._handle(event.data)) {
        welcomed = true;
        this._setState("connected", { reconnects: this.reconnects });
        this._flush();
      }
    };
    ws.onclose = (event) => {
      if (this._ws === ws) this._ws = null;
      this._inflight.clear();
      if (this._stopped || this.final) return;
      if (welcomed && !KEEP_BACKING_OFF.has(event.code)) this._attempt = 0;
      if (FINAL_CLOSE_CODES.has(event.code)) {
        this._finish(event.code, event.reason);
        return;
      }
      if (!opened) {
        this._checkSession().then((signedIn) => {
          if (signedIn === false) this._finish(4401, "not signed in");
          else this._backoff(event.code);
        });
        return;
      }
      this._backoff(event.code, event.reason);
    };
  }

  async _checkSession() {
    try {
      const response = await fetch(this.meUrl, { credentials: "same-origin", cache: "no-store" });
      return response.status === 401 ? false : response.ok ? true : null;
    } catch {
      return null; // unreachable: keep trying
    }
  }

  _delay(attempt) {
    const ceiling = Math.min(this.backoffCap, this.backoffBase * 2 ** Math.min(attempt, 20));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  _backoff(code, reason = "") {
    if (this._stopped || this.final) return;
    const retryIn = this._delay(this._attempt);
    this._attempt += 1;
    this._setState("reconnecting", { code, reason, attempt: this._attempt, retryIn });
    this._timer = setTimeout(() => this._connect(), retryIn);
  }

  _write(ws, frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  _resume() {
    // Staff follow a conversation only while they watch it, and the watch frames that follow
    // the hello carry its cursor: naming it in the hello too would open (and, for a
    // supervisor, audit) it twice. A relative's own conversations are all resumed by hello.
    const staff = this.welcome && this.welcome.user && this.welcome.user.role !== "relative";
    const entries = [...this.cursors.entries()].filter(([conv]) => !(staff && this.watching.has(conv)));
    return Object.fromEntries(entries.slice(-MAX_RESUME_ENTRIES));
  }

  /** hello, then watches, then pending reads; the outbox goes after the welcome (_flush). */
  _sayHello(ws) {
    this._unwatched.clear(); // a new connection carries nothing of what was unwatched
    this._write(ws, { type: "hello", resume: this._resume() });
    for (const conv of this.watching) {
      const after = this.cursors.get(conv);
      this._write(ws, after === undefined ? { type: "watch", conv } : { type: "watch", conv, after });
    }
    for (const [conv, seq] of this._reads) this._write(ws, { type: "read", conv, seq });
    this._reads.clear();
  }

  // -- frames in ------------------------------------------------------------------------------

  /** Dispatch one frame; true if it was the welcome. */
  _handle(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      console.warn("kinline socket: skipped an undecodable frame");
      return false;
    }
    if (!frame || typeof frame.type !== "string") return false;
    switch (frame.type) {
      case "welcome":
        this.welcome = frame;
        if (frame.limits) this.limits = frame.limits;
        this._emit("welcome", frame);
        this._emit("*", frame);
        return true;
      case "ack":
        this._acked(frame);
        return false;
      case "subscribed":
        // A cursor beyond a conversation's last seq is gone (the server said not_recovered):
        // it is followed from the server's seq, so ours drops to it, or every message up to
        // our stale cursor would be dropped as a duplicate.
        for (const [conv, seq] of Object.entries(frame.convs || {})) {
          const cursor = this.cursors.get(Number(conv));
          if (cursor !== undefined && cursor > seq) this.cursors.set(Number(conv), seq);
        }
        break;
      case "error":
        if (frame.cid && this._outbox.has(frame.cid)) {
          this._refused(frame);
          return false;
        }
        break;
      case "message": {
        const cursor = this.cursors.get(frame.conv);
        if (cursor !== undefined && frame.seq <= cursor) {
          this.duplicates += 1;
          return false;
        }
        if (!this._unwatched.has(frame.conv)) {
          // (a message still in flight when we unwatched leaves no cursor to resume)
          this.cursors.delete(frame.conv);
          this.cursors.set(frame.conv, frame.seq); // re-inserted: Map order = recency
        }
        const mine = this.welcome && frame.sender && frame.sender.id === this.welcome.user.id;
        if (mine && frame.cid && this._outbox.has(frame.cid)) {
          // stored before we saw its ack (the connection dropped in between)
          this._acked({ cid: frame.cid, conv: frame.conv, seq: frame.seq, id: frame.id, at: frame.at });
        }
        break;
      }
      default:
        break;
    }
    this._emit(frame.type, frame);
    this._emit("*", frame);
    return false;
  }

  _acked(ack) {
    this._inflight.delete(ack.cid);
    const entry = this._outbox.get(ack.cid);
    if (entry) {
      this._outbox.delete(ack.cid);
      this._forget(ack.cid);
    }
    this._emit("ack", { cid: ack.cid, conv: ack.conv, seq: ack.seq, id: ack.id, at: ack.at, entry });
    if (entry) this._emit("outbox", this.pending());
    this._flush();
  }

  _refused(error) {
    const entry = this._outbox.get(error.cid);
    this._inflight.delete(error.cid);
    if (RETRIABLE_SEND_ERRORS.has(error.code)) {
      // nothing was stored: keep it and try again a little later
      clearTimeout(this._retryTimer);
      this._retryTimer = setTimeout(() => this._flush(), this._delay(2));
      this._emit("send-retry", { ...error, conv: entry.conv });
      return;
    }
    this._outbox.delete(error.cid);
    this._forget(error.cid);
    this._emit("send-error", { cid: error.cid, conv: entry.conv, code: error.code, message: error.message, entry });
    this._emit("outbox", this.pending());
  }

  // -- frames out -----------------------------------------------------------------------------

  /** Queue a message; it is sent now if connected, else after the next (re)connect.
   * Returns the outbox entry {conv, cid, body, kind, queuedAt}. */
  send(conv, body, { kind = "text", cid = newCid(), attachments = [] } = {}) {
    if (this._outbox.has(cid)) throw new Error(`a send with cid ${cid} is already pending`);
    this._order = Math.max(this._order + 1, Date.now() * 1000);
    const entry = { conv, cid, body, kind, queuedAt: new Date().toISOString(), n: this._order };
    if (attachments.length) entry.attachments = attachments; // uploaded files: {id, type, name, ...}
    this._outbox.set(cid, entry);
    this._store(entry);
    this._emit("outbox", this.pending());
    this._flush();
    return entry;
  }

  /** A promise of the ack of `cid` (rejected with the send-error). */
  waitAck(cid) {
    return new Promise((resolve, reject) => {
      const offs = [
        this.on("ack", (ack) => ack.cid === cid && (offs.forEach((off) => off()), resolve(ack))),
        this.on("send-error", (err) => err.cid === cid && (offs.forEach((off) => off()), reject(err))),
      ];
    });
  }

  /** Outbox entries not yet acked (of one conversation, or all), oldest first. */
  pending(conv = null) {
    return [...this._outbox.values()].filter((e) => conv === null || e.conv === conv);
  }

  _flush() {
    if (this.state !== "connected") return;
    for (const entry of this._outbox.values()) {
      if (this._inflight.size >= MAX_IN_FLIGHT) return;
      if (this._inflight.has(entry.cid)) continue;
      const frame = { type: "send", conv: entry.conv, cid: entry.cid, body: entry.body };
      if (entry.kind !== "text") frame.kind = entry.kind;
      if (entry.attachments && entry.attachments.length) frame.attachments = entry.attachments.map((a) => a.id);
      if (this._write(this._ws, frame)) this._inflight.add(entry.cid);
    }
  }

  typing(conv) {
    const now = Date.now();
    if (!this.connected || now - (this._typingAt.get(conv) || 0) < TYPING_EVERY_MS) return;
    this._typingAt.set(conv, now);
    this._write(this._ws, { type: "typing", conv });
  }

  read(conv, seq) {
    if (!(seq > 0)) return;
    if (this.connected && this._write(this._ws, { type: "read", conv, seq })) return;
    this._reads.set(conv, Math.max(seq, this._reads.get(conv) || 0));
  }

  /** Follow a conversation live (staff), replaying after `after` (or our cursor) first. */
  watch(conv, after = null) {
    this.watching.add(conv);
    this._unwatched.delete(conv);
    if (after !== null && !this.cursors.has(conv)) this.cursors.set(conv, after);
    const cursor = this.cursors.get(conv);
    if (this.connected) {
      this._write(this._ws, cursor === undefined ? { type: "watch", conv } : { type: "watch", conv, after: cursor });
    }
  }

  /** Stop following a conversation: its cursor goes too, so no later hello resumes (nor,
   * for a supervisor, audits opening) it again. */
  unwatch(conv) {
    this.watching.delete(conv);
    this.cursors.delete(conv);
    this._unwatched.add(conv);
    if (this.connected) this._write(this._ws, { type: "unwatch", conv });
  }

  /** Set the resume cursor of a conversation (e.g. after loading its history over REST). */
  setCursor(conv, seq) {
    const cursor = this.cursors.get(conv);
    if (cursor === undefined || seq > cursor) {
      this.cursors.delete(conv);
      this.cursors.set(conv, seq);
    }
  }

  // -- the stored outbox ----------------------------------------------------------------------
  // One localStorage key per entry ("kinline.outbox.<user>.<cid>"): a tab writes and removes
  // only its own entries' keys, so two tabs of one user never overwrite each other.

  _entry(raw) {
    if (!raw || typeof raw.cid !== "string" || !Number.isInteger(raw.conv) || typeof raw.body !== "string") return null;
    const queuedAt = typeof raw.queuedAt === "string" ? raw.queuedAt : new Date().toISOString();
    const n = Number.isFinite(raw.n) ? raw.n : (Date.parse(queuedAt) || 0) * 1000;
    const entry = { conv: raw.conv, cid: raw.cid, body: raw.body, kind: raw.kind || "text", queuedAt, n };
    const files = Array.isArray(raw.attachments) ? raw.attachments.filter((a) => a && Number.isInteger(a.id)) : [];
    if (files.length) entry.attachments = files;
    return entry;
  }

  _loadOutbox() {
    const outbox = new Map();
    if (!this.outboxPrefix) return outbox;
    const found = [];
    try {
      // an outbox stored by an older page under the single key: one key per entry from now on
      const legacy = localStorage.getItem(this.outboxKey);
      if (legacy !== null) {
        let list = [];
        try {
          list = JSON.parse(legacy);
        } catch {
          list = [];
        }
        for (const raw of Array.isArray(list) ? list : []) {
          const entry = this._entry(raw);
          if (entry) this._store(entry);
        }
        localStorage.removeItem(this.outboxKey);
      }
      for (let i = 0; i < localStorage.length; i += 1) {
        const key = localStorage.key(i);
        if (!key || !key.startsWith(this.outboxPrefix)) continue;
        try {
          const entry = this._entry(JSON.parse(localStorage.getItem(key)));
          if (entry && key === this.outboxPrefix + entry.cid) found.push(entry);
        } catch {
          // unreadable entry: skipped
        }
      }
    } catch {
      // storage disabled: start empty
    }
    found.sort((a, b) => a.n - b.n || (a.cid < b.cid ? -1 : 1)); // oldest first
    for (const entry of found) {
      outbox.set(entry.cid, entry);
      this._order = Math.max(this._order, entry.n);
    }
    return outbox;
  }

  _store(entry) {
    if (!this.outboxPrefix) return;
    try {
      localStorage.setItem(this.outboxPrefix + entry.cid, JSON.stringify(entry));
    } catch {
      // storage full or disabled: the outbox still lives in memory
    }
  }

  _forget(cid) {
    if (!this.outboxPrefix) return;
    try {
      localStorage.removeItem(this.outboxPrefix + cid);
    } catch {
      // storage disabled
    }
  }

  /** Another tab of this user added or removed an outbox entry. */
  _onStorage = (event) => {
    if (!this.outboxPrefix || (event.key !== null && !event.key.startsWith(this.outboxPrefix))) return;
    let changed = false;
    if (event.key === null) {
      // storage cleared elsewhere: keep what is in memory, stored again
      for (const entry of this._outbox.values()) this._store(entry);
      return;
    }
    const cid = event.key.slice(this.outboxPrefix.length);
    if (event.newValue === null) {
      // acked (or refused) in the other tab
      if (this._outbox.delete(cid)) {
        this._inflight.delete(cid);
        changed = true;
      }
    } else if (!this._outbox.has(cid)) {
      let entry = null;
      try {
        entry = this._entry(JSON.parse(event.newValue));
      } catch {
        entry = null;
      }
      if (entry && entry.cid === cid) {
        // kept here too, in order: sent from this tab as well if that one closes first
        // (the same cid: the server stores it once)
        const all = [...this._outbox.values(), entry].sort((a, b) => a.n - b.n);
        this._outbox = new Map(all.map((e) => [e.cid, e]));
        changed = true;
      }
    }
    if (changed) this._emit("outbox", this.pending());
  };
}

export default KinlineSocket;
