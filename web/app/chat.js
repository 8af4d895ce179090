// The chat with the prison about one verified inmate.
//
// Own messages show their state: sending (in the socket's outbox, kept across disconnects and
// reloads), sent (acked: committed by the server), read (staff sent a `read` at or past its
// seq), or failed (refused for good, with the reason). Bodies are text, always (dom.js).
//
// Oversight the family can see: under the head, every time a supervisor opened this
// conversation (GET /conversations/{id}/access: who, with title, when), newest first, and a
// new one as it happens (the `opening` frame). They are audit entries: nobody can delete them.
//
// Messages are grouped under day separators ("今天", "昨天", a date). The chat opens at the
// newest message with the latest page of history; scrolling up to the top loads the page
// before it, keeping the message in view where it was, until the start is reached.

import { clear, h, replace } from "/static/lib/dom.js";
import { dayKey, errorText, formatDateTime, formatDay, formatTime, t } from "/static/lib/i18n.js";
import { notice, tx } from "/static/lib/ui.js";
import { api, ApiError } from "/static/lib/api.js";
import { shownBody } from "/static/lib/facts.js";
import { badge, inmateHead, inmateTabs, view } from "/static/app/view.js";
import { attachmentList, filePicker } from "/static/lib/attachments.js";

/** Set a text only when it differs (a live region would otherwise hear it again). */
function setChanged(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Make `list`'s children exactly `nodes`, in order, moving only what is out of place. */
function place(list, nodes) {
  let at = list.firstElementChild;
  for (const node of nodes) {
    if (at === node) at = at.nextElementSibling;
    else list.insertBefore(node, at);
  }
  while (at) {
    const next = at.nextElementSibling;
    at.remove();
    at = next;
  }
}

export function chatView(ctx, inmateId) {
  if (!ctx.verifiedInmates.includes(inmateId)) {
    return view(h("section", { class: "view" }, h("p", { class: "notice notice-error" }, errorText({ code: "not_found" }))));
  }
  const socket = ctx.socket;
  const prisonId = ctx.prisonOfInmate(inmateId);
  const elements = new Map(); // key -> <li>
  let conv = ctx.conversationOf(inmateId);
  let lastReadSent = 0;
  let newestKey = null; // the last bubble's key: a new one at the end scrolls to it

  const stateSlot = h("span", { id: "conv-state" });
  const presence = h("span", { id: "on-duty", aria: { live: "polite" } });
  // the verifiable record (hash chain): anyone can check it with sha256 alone
  const record = tx("a", "record.download", {}, { id: "conv-record", download: "", hidden: true, title: t("record.what"), data: { i18nTitle: "record.what" } });
  // a live region that only ever gains nodes: bubbles are kept and moved, never rebuilt, so
  // a screen reader reads out what is new and not the whole conversation again
  const list = h("ol", {
    class: "messages",
    id: "messages",
    aria: { live: "polite", relevant: "additions", label: t("inmate.tabs.chat") },
    data: { i18nAriaLabel: "inmate.tabs.chat" },
  });
  const typing = h("p", { class: "typing", id: "typing", aria: { live: "polite" } });
  const oversightSummary = h("summary", { id: "oversight-summary" });
  const oversightList = h("ol", { class: "oversight-list", id: "oversight-list" });
  const oversight = h(
    "details",
    { class: "oversight", id: "oversight", hidden: true },
    oversightSummary,
    tx("p", "oversight.intro", {}, { class: "muted small" }),
    oversightList,
  );
  let openings = []; // newest first
  let openingsOf = null; // the conversation they were loaded for
  const rating = h("div", { id: "rating", hidden: true });
  const out = notice({ id: "chat-error" });
  const input = h("textarea", {
    id: "compose",
    name: "body",
    rows: 2,
    maxlength: socket.limits.max_body_chars,
    placeholder: t("chat.placeholder"),
    aria: { label: t("chat.placeholder") },
    data: { i18nPlaceholder: "chat.placeholder", i18nAriaLabel: "chat.placeholder" },
  });
  const sendButton = tx("button", "chat.send", {}, { type: "submit", class: "primary", id: "send" });
  // photos and PDFs: uploaded as soon as chosen, sent with the next message (issue 18)
  const picker = filePicker({ id: "attach", onError: (err) => out.error(err) });
  const composer = h(
    "form",
    { class: "composer", id: "composer", autocomplete: "off" },
    picker.input,
    picker.button,
    input,
    sendButton,
  );
  const chosenFiles = h("div", { class: "composer-files", id: "composer-files" }, picker.list);

  // -- rendering ------------------------------------------------------------------------------

  function ownStatus(message) {
    return (ctx.readSeq.get(message.conv) || 0) >= message.seq ? "read" : "sent";
  }

  function bubble(key, { message = null, entry = null, status = null, reason = null }) {
    const own = status !== null;
    const kind = message ? message.kind : "text";
    let li = elements.get(key);
    if (!li) {
      const body = message ? shownBody(message.kind, message.body) : entry.body;
      const sender = own ? null : kind === "system" ? t("chat.system") : message.sender.name;
      const files = message ? message.attachments : entry.attachments;
      li = h(
        "li",
        { class: ["bubble", own && "own", kind === "system" && "system", kind === "note" && "note"] },
        sender ? h("p", { class: "sender" }, sender) : null,
        body ? h("p", { class: "body" }, body) : null,
        attachmentList(files),
        h("div", { class: "meta" }, h("time", { class: "at" }), own ? h("span", { class: "status" }) : null),
      );
      elements.set(key, li);
    }
    const at = li.querySelector(".at");
    if (message) {
      li.dataset.seq = message.seq;
      setChanged(at, formatTime(message.at));
      at.setAttribute("datetime", message.at);
      at.title = formatDateTime(message.at);
    } else {
      setChanged(at, "");
    }
    const cid = message ? message.cid : entry.cid;
    if (cid) li.dataset.cid = cid;
    if (own) {
      li.dataset.status = status;
      const label = status === "failed" ? t("chat.failed", { reason }) : t(`chat.${status}`);
      setChanged(li.querySelector(".status"), label);
    }
    return li;
  }

  // The first row: "loading earlier messages" while there are older pages, else the start.
  const top = h("li", { class: "history-top muted", id: "history-top" });
  let day = null; // the day of the last message placed, while rendering

  function separator(message) {
    const key = dayKey(message.at);
    if (key === day) return null;
    day = key;
    const k = `d:${key}`;
    let li = elements.get(k);
    if (!li) {
      li = h("li", { class: "day", data: { day: key } }, h("span", {}));
      elements.set(k, li);
    }
    setChanged(li.firstChild, formatDay(message.at));
    return [k, li];
  }

  function renderTop() {
    const complete = !conv || ctx.complete.has(conv.id);
    top.dataset.state = complete ? "start" : "more";
    setChanged(top, complete ? t("chat.historyStart") : t("chat.historyMore"));
  }

  function renderMessages() {
    const wanted = [];
    const seen = new Set();
    const add = (key, li) => {
      if (!seen.has(key)) wanted.push([key, li]);
      seen.add(key);
    };
    day = null;
    if (conv) {
      for (const message of ctx.messagesOf(conv.id)) {
        const sep = separator(message);
        if (sep) add(...sep);
        // a system card (the away reply is stored under the relative's id) is nobody's own
        const mine = message.kind !== "system" && message.sender && message.sender.id === ctx.userId;
        const key = mine && message.cid ? `c:${message.cid}` : `s:${message.seq}`;
        add(key, bubble(key, { message, status: mine ? ownStatus(message) : null }));
      }
      for (const entry of socket.pending(conv.id)) {
        const key = `c:${entry.cid}`;
        if (!seen.has(key)) add(key, bubble(key, { entry, status: "sending" }));
      }
    }
    for (const entry of ctx.unopenedAbout(inmateId)) {
      const key = `c:${entry.cid}`;
      if (!seen.has(key)) add(key, bubble(key, { entry, status: "sending" }));
    }
    for (const [cid, { entry, code, conv: failedConv, inmate }] of ctx.failedSends) {
      const key = `c:${cid}`;
      // refused by the socket (of a conversation), or refused an opening (of an inmate)
      const ours = failedConv !== null ? Boolean(conv) && failedConv === conv.id : inmate === inmateId;
      if (ours && entry && !seen.has(key)) add(key, bubble(key, { entry, status: "failed", reason: errorText({ code }) }));
    }
    const keep = new Set(wanted.map(([key]) => key));
    for (const key of [...elements.keys()]) if (!keep.has(key)) elements.delete(key);
    if (wanted.length) {
      renderTop();
      place(list, [top, ...wanted.map(([, li]) => li)]);
    } else {
      const key = conv ? "chat.empty" : "chat.noConversation";
      const shown = list.firstElementChild;
      if (!(shown && shown.dataset.i18n === key && list.children.length === 1)) {
        replace(list, tx("li", key, {}, { class: "muted empty" }));
      }
    }
    const newest = wanted.length ? wanted[wanted.length - 1][0] : null;
    if (newest !== null && newest !== newestKey) showNewest();
    newestKey = newest;
    markRead();
  }

  // The newest message just above the composer: the page scrolled to its end (the chat is
  // the page's last part; the composer, sticky at the bottom, cannot be scrolled into view,
  // it always is). The first render happens before the view is on the page, where scrolling
  // does nothing (the chat opened at its oldest message): then once it is.
  function showNewest() {
    const toEnd = () => {
      if (!list.isConnected) return;
      const page = document.scrollingElement;
      page.scrollTop = page.scrollHeight;
      if (!observing) watcher.observe(top);
      observing = true;
    };
    if (list.isConnected) toEnd();
    else requestAnimationFrame(toEnd);
  }

  function markRead() {
    if (!conv || document.visibilityState !== "visible") return;
    let last = 0;
    for (const message of ctx.messagesOf(conv.id)) {
      if (message.sender && message.sender.id !== ctx.userId) last = Math.max(last, message.seq);
    }
    if (last > lastReadSent) {
      lastReadSent = last;
      socket.read(conv.id, last);
      ctx.markOwnRead(conv.id, last);
    }
  }

  // Older pages: loaded when the first row comes into view, the page kept still (what was on
  // screen stays where it was while the older messages appear above it).
  let loadingOlder = false;
  async function loadOlder() {
    if (!conv || loadingOlder || ctx.complete.has(conv.id)) return;
    loadingOlder = true;
    const page = document.scrollingElement;
    const fromEnd = page.scrollHeight - page.scrollTop;
    try {
      await ctx.loadOlder(conv.id); // renders through the "messages" event
      page.scrollTop = page.scrollHeight - fromEnd;
    } catch (err) {
      out.error(err);
    } finally {
      loadingOlder = false;
    }
    // still at the top with more to load (a short page, a tall screen): the next page
    if (seesTop && !ctx.complete.has(conv.id)) loadOlder();
  }
  let seesTop = false;
  const watcher = new IntersectionObserver((entries) => {
    seesTop = entries.some((e) => e.isIntersecting);
    if (seesTop) loadOlder();
  });
  let observing = false; // from the first scroll to the newest on: not the top seen before it

  function renderHead() {
    replace(stateSlot, conv && conv.state ? badge("convState", conv.state) : "");
    const n = ctx.presence.get(prisonId);
    presence.textContent = n === undefined ? "" : n > 0 ? t("chat.onDuty", { n }) : t("chat.noneOnDuty");
    presence.dataset.onDuty = n === undefined ? "" : String(n);
    record.hidden = !conv;
    if (conv) record.href = `/api/v1/conversations/${conv.id}/export`;
  }

  let typingTimer = null;
  function renderTyping() {
    clearTimeout(typingTimer);
    const who = conv ? ctx.typing.get(conv.id) : null;
    if (who && who.until > Date.now()) {
      typing.textContent = t("chat.typing", { name: who.name });
      typingTimer = setTimeout(renderTyping, who.until - Date.now() + 50);
    } else {
      typing.textContent = "";
    }
  }

  function renderRating() {
    const show = conv && conv.state === "resolved" && (conv.rating === null || conv.rating === undefined);
    rating.hidden = !show;
    if (!show) return;
    if (rating.dataset.cycle === String(conv.cycle) && rating.firstChild) return;
    rating.dataset.cycle = String(conv.cycle);
    replace(rating, ratingForm());
  }

  function ratingForm() {
    const result = notice();
    const stars = h(
      "fieldset",
      { class: "stars" },
      h("legend", { class: "sr-only" }, t("field.rating")),
      [1, 2, 3, 4, 5].map((n) =>
        h("label", {}, h("input", { type: "radio", name: "rating", value: n, required: true }), t("rate.stars", { n })),
      ),
    );
    const form = h(
      "form",
      { class: "card form", id: "rate-form" },
      tx("h2", "rate.title"),
      stars,
      h("div", { class: "field" }, tx("label", "rate.comment", {}, { for: "rate-comment" }), h("textarea", { id: "rate-comment", name: "comment", maxlength: 1000, rows: 2 })),
      result,
      h("div", { class: "actions" }, tx("button", "rate.submit", {}, { type: "submit", class: "primary" })),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = Number(new FormData(form).get("rating"));
      const comment = String(new FormData(form).get("comment") || "").trim();
      try {
        await api.post(`/conversations/${conv.id}/rate`, { rating: value, comment });
        conv.rating = value;
        replace(rating, tx("p", "rate.thanks", {}, { class: "notice notice-ok" }));
      } catch (err) {
        if (err instanceof ApiError && err.code === "conflict") {
          conv.rating = value;
          replace(rating, tx("p", "rate.thanks", {}, { class: "notice notice-ok" }));
        } else {
          result.error(err);
        }
      }
    });
    return form;
  }

  function openingText(o) {
    const at = formatDateTime(o.at);
    const via = t(`oversight.via.${o.via === "watch" ? "watch" : "history"}`);
    return o.who.title
      ? t("oversight.item", { name: o.who.name, title: o.who.title, at, via })
      : t("oversight.itemNoTitle", { name: o.who.name, at, via });
  }

  function renderOversight() {
    oversight.hidden = !conv;
    if (!conv) return;
    oversightSummary.textContent = openings.length
      ? t("oversight.summary", { n: openings.length, last: openingText(openings[0]) })
      : t("oversight.none");
    oversight.dataset.count = String(openings.length);
    replace(
      oversightList,
      openings.map((o) => h("li", { data: { via: o.via } }, h("time", { datetime: o.at }, openingText(o)))),
    );
  }

  async function loadOpenings() {
    if (!conv || openingsOf === conv.id) return;
    openingsOf = conv.id;
    try {
      const got = await api.get(`/conversations/${conv.id}/access`);
      const key = (o) => `${o.who.name}|${o.at}|${o.via}`;
      const loaded = got.items || [];
      const known = new Set(loaded.map(key));
      const live = openings.filter((o) => !o.id && !known.has(key(o))); // told while loading
      openings = [...live, ...loaded];
    } catch {
      openingsOf = null; // shown again on the next change
    }
    renderOversight();
  }

  function renderAll() {
    renderOversight();
    loadOpenings();
    renderHead();
    renderMessages();
    renderTyping();
    renderRating();
  }

  // -- sending --------------------------------------------------------------------------------

  // Synchronous: the message is in an outbox (the socket's, or, before the conversation
  // exists, the app's while it is opened) before the input is cleared, so a second Enter
  // while the first message's conversation is being opened finds nothing to send again.
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    out.clear();
    const body = input.value;
    const files = picker.files();
    if (picker.busy()) {
      out.show(t("attach.uploading"), "error");
      return;
    }
    if (!body.trim() && !files.length) {
      out.error({ code: "body_empty" });
      return;
    }
    const max = socket.limits.max_body_chars;
    if ([...body].length > max) {
      out.show(t("chat.tooLong", { n: max }), "error");
      return;
    }
    ctx.sendAbout(inmateId, body, files);
    picker.reset();
    input.value = "";
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    if (conv && input.value.trim()) socket.typing(conv.id);
  });

  // -- live -----------------------------------------------------------------------------------

  const mine = (convId) => conv && convId === conv.id;
  const offs = [
    ctx.on("messages", (convId) => mine(convId) && renderMessages()),
    ctx.on("outbox", renderMessages),
    ctx.on("send-error", (err) => (mine(err.conv) || err.inmate === inmateId) && renderMessages()),
    ctx.on("typing", (convId) => mine(convId) && renderTyping()),
    ctx.on("opening", (ev) => {
      if (!mine(ev.conv)) return;
      openings = [{ who: ev.who, at: ev.at, via: ev.via }, ...openings];
      renderOversight();
    }),
    ctx.on("presence", renderHead),
    ctx.on("conversation", (ev) => {
      if (!conv && ev.inmate === inmateId) {
        conv = ctx.conversations.get(ev.conv);
      }
      if (mine(ev.conv)) {
        conv = ctx.conversations.get(ev.conv);
        renderHead();
        renderRating();
      }
    }),
    ctx.on("conversations", () => {
      conv = ctx.conversationOf(inmateId) || conv;
      renderAll();
    }),
  ];
  const onVisible = () => markRead();
  document.addEventListener("visibilitychange", onVisible);
  if (conv) socket.watch(conv.id);
  const viewing = { inmate: inmateId }; // this chat, on screen until stopped
  ctx.viewing = viewing;

  const el = h(
    "section",
    { class: "view chat" },
    inmateHead(ctx, inmateId),
    inmateTabs(inmateId, ""),
    h("div", { class: "chat-head" }, stateSlot, presence, record),
    oversight,
    list,
    typing,
    rating,
    out,
    chosenFiles,
    composer,
  );
  renderAll();
  return view(el, {
    stop: () => {
      if (ctx.viewing === viewing) ctx.viewing = null;
      offs.forEach((off) => off());
      watcher.disconnect();
      clearTimeout(typingTimer);
      document.removeEventListener("visibilitychange", onVisible);
    },
    rerender: () => {
      elements.clear();
      clear(rating);
      delete rating.dataset.cycle;
      renderAll();
    },
  });
}
