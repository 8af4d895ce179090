// The duty console (/console): an officer signs in, goes on duty, works the prison's live
// queue (claim, reply, private notes, canned replies, transfer, resolve), keeps the inmate's
// card up to date beside the chat, and decides family-link and visit requests.
//
// Live data: the socket joins the prison's staff topic on connect (conversation, presence and
// visit events) and we `watch` every open conversation of the queue, so a relative's new
// message rings and counts as unread wherever it lands. The socket is started before the
// queue is loaded, so no event falls between the two.

import { api, ApiError } from "/static/lib/api.js";
import { $, h, clear, replace, show } from "/static/lib/dom.js";
import { t, errorText, formatList, onLocaleChange } from "/static/lib/i18n.js";
import {
  i18nText,
  prisonNames,
  signIn,
  startI18n,
  startStaff,
  tabs,
  toast,
  toastError,
  waitTimer,
} from "/static/console/staff.js";
import { Queue, RESPONSE_TARGET_S } from "/static/console/queue.js";
import { Thread } from "/static/console/thread.js";
import { filePicker } from "/static/lib/attachments.js";
import { InmateCard } from "/static/console/card.js";
import { LinkRequests, VisitRequests } from "/static/console/requests.js";
import { FlagQueue } from "/static/console/flags.js";
import { CannedManager, CannedPicker } from "/static/console/canned.js";
import { late, sound, Unread } from "/static/console/alerts.js";
import { CommentQueue } from "/static/console/comments.js";
import { loadPeriod, periodView } from "/static/monitor/period.js";
import { MessageSearch } from "/static/console/search.js";
import { ThreadBrowser } from "/static/console/browse.js";
import { Shortcuts } from "/static/console/shortcuts.js";

const HISTORY_PAGE = 50;
const REQUESTS_REFRESH_MS = 60_000;
const TYPING_SHOWN_MS = 4000;

let queue = null;
const unread = new Unread(() => {
  retitle();
  if (queue) queue.render();
});
const retitle = startI18n("console.title", () => unread.total);

const me = await signIn(["officer"]);
show($("#desk"), true);
const socket = startStaff(me);
const myId = me.user.id;
const myself = { id: myId, role: me.user.role, name: me.user.name };

queue = new Queue({
  list: $("#queue"),
  empty: $("#queue-empty"),
  counter: $("#count-queue"),
  meId: myId,
  onOpen: (id) => openConversation(id),
});
queue.unread = (id) => unread.of(id);
const DELIVERY_REFRESH_MS = 10000;
queue.onLate = (conv) =>
  late.alert(
    `${conv.id}:${conv.cycle}`,
    t("console.late.title"),
    t("console.late.body", { relative: conv.relative_name || "", inmate: conv.inmate_name || "" }),
  );
const thread = new Thread($("#messages"), { meId: myId });
const card = new InmateCard($("#card-body"));
const links = new LinkRequests({ list: $("#links"), empty: $("#links-empty"), counter: $("#count-links") });
const visits = new VisitRequests({ list: $("#visits"), empty: $("#visits-empty"), counter: $("#count-visits") });
const compose = $("#compose");
const picker = new CannedPicker(compose, $("#canned")); // before the composer's own keys
let current = null; // the open conversation's id
const onDuty = new Map(); // prison id -> Map(officer id -> name), from GET /duty and presence

function dutyOf(prison, officers) {
  onDuty.set(prison, new Map((officers || []).map((o) => [o.id, o.name])));
}

/** The name of an officer on duty in any of my prisons. */
function officerName(id) {
  for (const names of onDuty.values()) if (names.has(id)) return names.get(id);
  return null;
}

// -- who is on duty ----------------------------------------------------------------------------

const dutyBox = $("#duty");
const dutyToggle = $("#duty-toggle");
const dutyLabel = $("#duty-label");

function showDuty(on) {
  dutyToggle.checked = on;
  dutyBox.classList.toggle("on", on);
  i18nText(dutyLabel, on ? "console.duty.on" : "console.duty.off");
}

/** GET /duty: whether I said I am on duty, and who is on duty now in my prisons. */
async function loadDuty() {
  show(dutyBox, true);
  try {
    const got = await api.get("/duty");
    for (const prison of got.prisons || []) dutyOf(prison.prison_id, prison.officers);
    showDuty(Boolean(got.on_duty));
  } catch (err) {
    showDuty(false);
    toastError(err);
  }
}

async function putDuty(wanted, handOver = {}) {
  dutyToggle.disabled = true;
  try {
    await api.put("/duty", { on_duty: wanted, ...handOver });
    showDuty(wanted);
    toast(t(wanted ? "console.duty.nowOn" : "console.duty.nowOff"));
    return true;
  } catch (err) {
    showDuty(!wanted);
    toastError(err);
    return false;
  } finally {
    dutyToggle.disabled = false;
  }
}

// Going off duty while holding conversations: first say to whom they go (a colleague on
// duty, or back to the queue) and with what note; the server moves them all at once.
const offDuty = $("#offduty");
const offDutyTo = $("#offduty-to");

function heldByMe() {
  return [...queue.threads.values()].filter((c) => c.state === "active" && c.assigned_officer_id === myId);
}

async function askHandOver(held) {
  i18nText($("#offduty-held"), "console.offduty.held", { n: held.length });
  try {
    const got = await api.get("/duty"); // who is on duty now, names included
    for (const prison of got.prisons || []) dutyOf(prison.prison_id, prison.officers);
  } catch {
    // the names from presence events are enough
  }
  const colleagues = new Map();
  for (const names of onDuty.values()) for (const [id, name] of names) if (id !== myId) colleagues.set(id, name);
  clear(offDutyTo);
  offDutyTo.append(h("option", { value: "" }, t("console.offduty.queue")));
  for (const [id, name] of [...colleagues.entries()].sort((a, b) => a[1].localeCompare(b[1]))) {
    offDutyTo.append(h("option", { value: id }, name));
  }
  show(offDuty, true);
  offDutyTo.focus();
}

dutyToggle.addEventListener("change", async () => {
  const wanted = dutyToggle.checked;
  if (wanted) late.ask(); // a click: the moment a browser lets a page ask
  const held = wanted ? [] : heldByMe();
  if (held.length) {
    showDuty(true); // still on duty until the hand-over is chosen
    await askHandOver(held);
    return;
  }
  await putDuty(wanted);
});

offDuty.addEventListener("submit", async (event) => {
  event.preventDefault();
  const to = Number(offDutyTo.value);
  const note = $("#offduty-note").value.trim();
  const handOver = { ...(to ? { hand_to: to } : {}), ...(note ? { note } : {}) };
  if (await putDuty(false, handOver)) {
    offDuty.reset();
    show(offDuty, false);
  }
});
$("#offduty-stay").addEventListener("click", () => {
  offDuty.reset();
  show(offDuty, false);
  dutyToggle.focus();
});

socket.on("presence", (presence) => {
  if (!presence.officers) return;
  dutyOf(presence.prison, presence.officers);
  if (!$("#transfer-form").hidden) fillTransferTargets();
});

// -- the open conversation ------------------------------------------------------------------

const chatTitle = $("#chat-title");
const chatSub = $("#chat-sub");
const notice = $("#chat-notice");
const claimButton = $("#act-claim");
const transferButton = $("#act-transfer");
const resolveButton = $("#act-resolve");

function say(key, params = {}, ok = false) {
  i18nText(notice, key, params);
  notice.classList.toggle("ok", ok);
}

function renderHead() {
  const conv = current === null ? null : queue.get(current);
  if (!conv) return;
  chatTitle.textContent = t("console.chat.title", { relative: conv.relative_name, inmate: conv.inmate_name });
  const parts = [h("span", { class: ["state-badge", conv.state], data: { state: conv.state } }, t(`convState.${conv.state}`))];
  if (conv.state === "waiting" && conv.waiting_since && !conv.first_reply_at) {
    parts.push(" ", t("console.chat.waiting"), " ", waitTimer(conv.waiting_since, { target: RESPONSE_TARGET_S }));
  }
  if (conv.state === "active") {
    const holder = conv.assigned_officer_id === myId
      ? t("console.queue.heldByMe")
      : t("console.queue.heldBy", { name: conv.assigned_officer_name || officerName(conv.assigned_officer_id) || `#${conv.assigned_officer_id}` });
    parts.push(" · ", holder);
  }
  if (conv.handover_note && (conv.state === "active" || conv.state === "waiting")) {
    parts.push(h("span", { class: "handover" }, " · ", t("console.chat.handover", { note: conv.handover_note })));
  }
  clear(chatSub).append(...parts);
  const mine = conv.state === "active" && conv.assigned_officer_id === myId;
  claimButton.disabled = conv.state !== "waiting";
  transferButton.disabled = !mine;
  resolveButton.disabled = !(conv.state === "waiting" || mine);
}

/** Open a conversation: at its latest messages, or at message `at` (a search hit: the
 * page from a few messages before it, the rest following live from the socket's replay). */
async function openConversation(id, at = null) {
  if (current === id) {
    if (at === null) compose.focus();
    else await showSeq(id, at);
    return;
  }
  const previous = current;
  current = id;
  queue.select(id);
  unread.clear(id);
  thread.reset(id);
  hideTransfer();
  notice.textContent = "";
  delete notice.dataset.i18n;
  show($("#chat-none"), false);
  show($("#chat-open"), true);
  if (window.matchMedia("(max-width: 900px)").matches) $("#chat").scrollIntoView({ block: "start" });
  if (previous !== null && !keepWatching(queue.get(previous))) socket.unwatch(previous);
  const conv = queue.get(id);
  renderHead();
  card.show(conv ? conv.inmate_id : null, id);
  try {
    const around = at === null ? {} : { after: Math.max(0, at - FOUND_CONTEXT) };
    const page = await api.get(`/conversations/${id}/messages`, { limit: HISTORY_PAGE, ...around });
    if (current !== id) return; // another conversation was opened meanwhile: not this one
    const messages = page.messages || [];
    thread.add(...messages);
    showEarlier(thread.firstSeq > 1 && (at !== null || messages.length >= HISTORY_PAGE));
    if (at !== null && messages.length >= HISTORY_PAGE) await loadLater(id);
    loadDeliveries(id);
  } catch (err) {
    if (current !== id) return; // (thread.lastSeq would be the other conversation's)
    toastError(err);
  }
  socket.watch(id, thread.lastSeq);
  for (const entry of socket.pending(id)) thread.addPending(entry, myself);
  markRead();
  if (at === null) compose.focus({ preventScroll: true });
  else highlight(at);
}

const FOUND_CONTEXT = 10; // messages shown before a search hit
const LATER_PAGE = 500;

/** Opened at a search hit: the messages from there to the latest, so the conversation reads
 * on without a gap (the socket may already follow it from further on). */
async function loadLater(id) {
  for (;;) {
    const page = await api.get(`/conversations/${id}/messages`, { after: thread.lastSeq, limit: LATER_PAGE });
    if (current !== id) return;
    const messages = page.messages || [];
    thread.add(...messages);
    if (messages.length < LATER_PAGE) return;
  }
}

/** Mark message `seq` of the open conversation as the one searched for, and go to it. */
function highlight(seq) {
  for (const el of thread.list.querySelectorAll("li.msg.found")) el.classList.remove("found");
  const entry = thread.bySeq.get(seq);
  if (!entry) return;
  entry.el.classList.add("found");
  entry.el.tabIndex = -1;
  entry.el.scrollIntoView({ block: "center" });
  entry.el.focus({ preventScroll: true });
}

/** A search hit in the conversation already open: load its page if it is not shown. */
async function showSeq(id, seq) {
  if (!thread.bySeq.has(seq)) {
    try {
      const page = await api.get(`/conversations/${id}/messages`, {
        after: Math.max(0, seq - FOUND_CONTEXT),
        limit: HISTORY_PAGE,
      });
      if (current !== id) return;
      thread.add(...(page.messages || []));
      showEarlier(thread.firstSeq > 1);
    } catch (err) {
      toastError(err);
      return;
    }
  }
  highlight(seq);
}

// whether and how each answer reached the relative (WeChat, push, SMS), refreshed while open
async function loadDeliveries(id) {
  try {
    const found = await api.get(`/conversations/${id}/deliveries`);
    if (current === id) thread.showDeliveries(found.items || []);
  } catch {
    // not shown: the conversation itself matters more, and the next refresh tries again
  }
}
setInterval(() => {
  if (current !== null && document.visibilityState === "visible") loadDeliveries(current);
}, DELIVERY_REFRESH_MS);

function keepWatching(conv) {
  return Boolean(conv) && (conv.state === "waiting" || conv.state === "active");
}

const earlier = h("li", { class: "earlier" }, h("button", { type: "button", class: "link-button", on: { click: loadEarlier } }, ""));
function showEarlier(visible) {
  if (!visible) {
    earlier.remove();
    return;
  }
  i18nText(earlier.firstChild, "console.chat.earlier");
  thread.list.prepend(earlier);
}

async function loadEarlier() {
  const id = current;
  try {
    const page = await api.get(`/conversations/${id}/messages`, { before: thread.firstSeq, limit: HISTORY_PAGE });
    if (current !== id) return;
    const messages = page.messages || [];
    const height = thread.list.scrollHeight;
    thread.add(...messages);
    thread.list.scrollTop += thread.list.scrollHeight - height;
    showEarlier(messages.length >= HISTORY_PAGE && thread.firstSeq > 1);
  } catch (err) {
    toastError(err);
  }
}

function markRead() {
  if (current !== null && document.visibilityState === "visible" && thread.lastSeq > 0) {
    socket.read(current, thread.lastSeq);
  }
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && current !== null) {
    unread.clear(current);
    markRead();
  }
});

// -- claim, transfer, resolve -------------------------------------------------------------

async function lifeCycle(button, path, body = {}) {
  const id = current;
  button.disabled = true;
  try {
    const reply = await api.post(`/conversations/${id}/${path}`, body);
    queue.put(reply);
    if (current === id) renderHead();
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      const conv = await queue.refresh(id).catch(() => queue.get(id));
      if (current === id) {
        renderHead();
        if (conv && conv.state === "active" && conv.assigned_officer_id !== myId) {
          say("console.chat.heldByOther", { name: conv.assigned_officer_name || `#${conv.assigned_officer_id}` });
        } else {
          notice.textContent = errorText(err);
          delete notice.dataset.i18n;
        }
      }
    } else {
      toastError(err);
      if (current === id) renderHead();
    }
    return false;
  }
}

claimButton.addEventListener("click", async () => {
  if (await lifeCycle(claimButton, "claim")) say("console.chat.claimed", {}, true);
});

resolveButton.addEventListener("click", async () => {
  if (await lifeCycle(resolveButton, "resolve")) say("console.chat.resolved", {}, true);
});

const transferForm = $("#transfer-form");
const transferTo = $("#transfer-to");

function fillTransferTargets() {
  const chosen = transferTo.value;
  clear(transferTo);
  transferTo.append(h("option", { value: "" }, t("console.transfer.choose")));
  const conv = queue.get(current);
  const names = (conv && onDuty.get(conv.prison_id)) || new Map();
  for (const [id, name] of [...names.entries()].sort((a, b) => a[1].localeCompare(b[1]))) {
    if (id !== myId) transferTo.append(h("option", { value: id }, name));
  }
  transferTo.value = chosen;
  // nobody to hand it to: say so (the list was just empty), and offer the queue instead
  const nobody = transferTo.options.length <= 1;
  show($("#transfer-none"), nobody);
  transferTo.disabled = nobody;
  transferForm.querySelector("button[type=submit]").disabled = nobody;
}

function hideTransfer() {
  show(transferForm, false);
  transferButton.setAttribute("aria-expanded", "false");
}

transferButton.setAttribute("aria-controls", "transfer-form");
transferButton.addEventListener("click", async () => {
  if (!transferForm.hidden) {
    hideTransfer();
    return;
  }
  try {
    const got = await api.get("/duty");
    for (const prison of got.prisons || []) dutyOf(prison.prison_id, prison.officers);
  } catch {
    // the names from presence events are enough
  }
  fillTransferTargets();
  show(transferForm, true);
  transferButton.setAttribute("aria-expanded", "true");
  transferTo.focus();
});
$("#transfer-release").addEventListener("click", async () => {
  const note = $("#transfer-note").value.trim();
  if (await lifeCycle($("#transfer-release"), "release", note ? { note } : {})) {
    transferForm.reset();
    hideTransfer();
    say("console.chat.released", {}, true);
  }
  $("#transfer-release").disabled = false;
});
$("#transfer-cancel").addEventListener("click", () => {
  hideTransfer();
  transferButton.focus();
});
transferForm.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    hideTransfer();
    transferButton.focus();
  }
});
transferForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const officer = Number(transferTo.value);
  const note = $("#transfer-note").value.trim();
  if (!officer) {
    say("console.transfer.pick");
    transferTo.focus();
    return;
  }
  if (!note) {
    say("console.transfer.noteNeeded");
    $("#transfer-note").focus();
    return;
  }
  const name = officerName(officer) || "";
  if (await lifeCycle(transferForm.querySelector("button[type=submit]"), "transfer", { officer_id: officer, note })) {
    transferForm.reset();
    hideTransfer();
    say("console.chat.transferred", { name }, true);
  }
  transferForm.querySelector("button[type=submit]").disabled = false;
});

// -- the composer -------------------------------------------------------------------------

const composer = $("#composer");
const composeError = $("#compose-error");

function kind() {
  return composer.elements.kind.value === "note" ? "note" : "text";
}

function showKind() {
  const note = kind() === "note";
  composer.classList.toggle("note", note);
  compose.dataset.i18nPlaceholder = note ? "console.compose.notePlaceholder" : "console.compose.placeholder";
  compose.placeholder = t(compose.dataset.i18nPlaceholder);
}
for (const radio of composer.querySelectorAll('input[name="kind"]')) radio.addEventListener("change", showKind);

compose.addEventListener("keydown", (event) => {
  if (picker.open) return; // the canned list has the arrow keys, Enter, Tab and Escape
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});
compose.addEventListener("input", () => {
  composeError.textContent = "";
  // typing is shown to the relative: never while writing a private note
  if (current !== null && kind() === "text" && compose.value.trim()) socket.typing(current);
});

// photos and PDFs sent with the next reply or note (issue 18): uploaded as soon as chosen
const files = filePicker({ id: "attach", onError: (err) => (composeError.textContent = errorText(err)) });
composer.querySelector(".compose-row").prepend(files.input, files.button);
composer.querySelector(".compose-row").before(files.list);

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  if (current === null) return;
  const body = compose.value.trim();
  if (files.busy()) {
    composeError.textContent = t("attach.uploading");
    return;
  }
  const attachments = files.files();
  if (!body && !attachments.length) return;
  const max = socket.limits.max_body_chars;
  if (body.length > max) {
    composeError.textContent = t("console.compose.tooLong", { n: max });
    return;
  }
  const entry = socket.send(current, body, { kind: kind(), attachments });
  thread.addPending(entry, myself);
  files.reset();
  compose.value = "";
  picker.close();
  compose.focus();
});

socket.on("send-error", (err) => {
  thread.failed(err.cid, err);
  if (err.conv !== current) toastError(err);
});

// -- live events --------------------------------------------------------------------------

socket.on("conversation", async (event) => {
  const known = queue.get(event.conv);
  const conv = queue.apply(event);
  const fresh = event.event === "created" || event.event === "reopened";
  if (fresh) {
    // A new question. Its message was published before we could watch: with a cursor the
    // socket replays it (and it counts as unread as it arrives); without, count it here.
    const counted = socket.cursors.has(event.conv);
    if (!socket.watching.has(event.conv)) socket.watch(event.conv);
    if (!counted && !(event.conv === current && document.visibilityState === "visible")) unread.bump(event.conv);
    sound.chime();
  }
  if (event.event === "released") {
    // back in the queue (its holder went off duty, or let it go): a question for all of us
    if (!socket.watching.has(event.conv)) socket.watch(event.conv);
    if (event.by !== myId) sound.chime();
  }
  if (event.event === "claimed" && event.officer === myId && event.by == null) {
    // given to me by the prison's auto-assignment (issue 16)
    if (!socket.watching.has(event.conv)) socket.watch(event.conv);
    toast(t("console.chat.assignedToMe"));
    sound.chime();
  }
  if (event.event === "transferred" && event.officer === myId && event.by !== myId) {
    toast(t("console.chat.transferredToMe", { note: event.note || "" }));
    sound.chime();
  }
  if (event.state === "resolved" && event.conv !== current) {
    socket.unwatch(event.conv);
    unread.clear(event.conv);
  }
  if (event.conv === current) renderHead();
  if (!known || !conv.relative_name || (conv.assigned_officer_id !== null && !conv.assigned_officer_name)) {
    try {
      await queue.refresh(event.conv);
      if (event.conv === current) renderHead();
    } catch {
      // the event is applied; the names come with the next change or reload
    }
  }
  if (fresh) announceQuestion(queue.get(event.conv));
});

// The queue is rebuilt on every change, so it is not a live region itself: a new question
// is said once, in a short sentence, by a small polite announcer.
const announcer = $("#announcer");
function announceQuestion(conv) {
  if (!conv || conv.state !== "waiting") return;
  announcer.textContent =
    conv.relative_name && conv.inmate_name
      ? t("console.queue.newQuestion", { relative: conv.relative_name, inmate: conv.inmate_name })
      : t("console.queue.newQuestionAnon");
}

socket.on("message", (message) => {
  if (message.conv === current) {
    thread.add(message);
    if (message.sender.role === "relative") {
      if (document.visibilityState === "visible") markRead();
      else {
        unread.bump(message.conv);
        sound.chime();
      }
    }
    return;
  }
  if (message.sender.role === "relative" && message.kind === "text") {
    unread.bump(message.conv);
    sound.chime();
  }
});

const typing = $("#typing");
let typingTimer = null;
socket.on("typing", (event) => {
  if (event.conv !== current || event.user.id === myId) return;
  i18nText(typing, "console.chat.typing", { name: event.user.name });
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => {
    typing.textContent = "";
    delete typing.dataset.i18n;
  }, TYPING_SHOWN_MS);
});

socket.on("visit", () => visits.load());
socket.on("info", (event) => card.reload(event.inmate));
/** Load the queue and watch every open conversation (live from its last seq: no gap); stop
 * watching what left the queue meanwhile (resolved while we were away), but the one shown. */
async function syncQueue() {
  for (const conv of await queue.load()) {
    if (keepWatching(conv) && !socket.watching.has(conv.id)) socket.watch(conv.id, conv.last_seq);
  }
  for (const id of [...socket.watching]) {
    if (id !== current && !keepWatching(queue.get(id))) {
      socket.unwatch(id);
      unread.clear(id);
    }
  }
  renderHead();
}

socket.on("welcome", () => {
  // after a reconnect: the queue may have moved while we were away (events published then,
  // or lost with a server process that died, never reach us): load it again
  if (socket.reconnects > 0) syncQueue().catch(toastError);
});

onLocaleChange(() => {
  renderHead();
  showKind();
  if (!transferForm.hidden) fillTransferTargets();
});

// -- side tabs ---------------------------------------------------------------------------

let canned = null;
const flags = new FlagQueue({
  list: $("#flags"),
  empty: $("#flags-empty"),
  counter: $("#count-flags"),
  state: $("#flags-state"),
  onOpen: (conv) => openConversation(conv),
});
// comments on announcements and the desk's figures (issue 16)
const commentQueue = new CommentQueue({
  list: $("#comments"),
  empty: $("#comments-empty"),
  onCount: (n) => {
    $("#count-comments").textContent = n ? String(n) : "";
  },
});
async function loadDeskFigures() {
  const box = $("#console-figures");
  $("#console-figures-error").textContent = "";
  try {
    const got = await loadPeriod();
    replace(box, (got.prisons || []).map((p) => [h("h3", {}, p.name), periodView(p)]));
  } catch (err) {
    $("#console-figures-error").textContent = errorText(err);
  }
}
tabs($(".tabs"), (id) => {
  if (id === "tab-flags") flags.load();
  if (id === "tab-comments") commentQueue.load();
  if (id === "tab-figures") loadDeskFigures();
  if (id === "tab-links") links.load();
  if (id === "tab-visits") visits.load();
  if (id === "tab-canned" && canned) canned.reload();
});
for (const radio of document.querySelectorAll('input[name="queue-filter"]')) {
  radio.addEventListener("change", async () => {
    if (radio.value === "resolved") {
      try {
        const got = await api.get("/conversations", { state: "resolved", limit: 100 });
        for (const row of got.conversations || []) if (!queue.get(row.id)) queue.put(row);
      } catch (err) {
        toastError(err);
      }
    }
    queue.setFilter(radio.value);
  });
}

// -- search, the filtered thread list, keyboard shortcuts (issue 18) ------------------------

const search = new MessageSearch({
  form: $("#search-form"),
  panel: $("#search-panel"),
  onOpen: async (hit) => {
    try {
      if (!queue.get(hit.conv)) await queue.refresh(hit.conv); // a thread not in the queue
      await openConversation(hit.conv, hit.seq);
    } catch (err) {
      toastError(err);
    }
  },
});
const browser = new ThreadBrowser({
  form: $("#filters-form"),
  list: $("#browse"),
  status: $("#browse-status"),
  more: $("#browse-more"),
  live: [$("#panel-queue .filter"), $("#queue"), $("#queue-empty")],
  queue,
});
queue.afterRender = () => browser.render();

/** The rows of the list shown (the filtered one, or the live queue), in order. */
function shownThreads() {
  return browser.active ? browser.buttons() : [...$("#queue").querySelectorAll("button.item")];
}

new Shortcuts({
  dialog: $("#shortcuts"),
  button: $("#shortcuts-button"),
  actions: {
    // opened from the keyboard, the focus stays on the list (the next key is a shortcut
    // too), not in the composer
    next: async (step) => {
      const rows = shownThreads();
      if (!rows.length) return;
      const at = rows.findIndex((row) => Number(row.dataset.conv) === current);
      const next = at < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, at + step));
      const id = Number(rows[next].dataset.conv);
      await openConversation(id);
      const row = shownThreads().find((r) => Number(r.dataset.conv) === id);
      if (row && current === id) row.focus();
    },
    claim: () => {
      if (current !== null && !claimButton.disabled) claimButton.click();
    },
    resolve: () => {
      if (current !== null && !resolveButton.disabled) resolveButton.click();
    },
    search: () => search.focus(),
  },
});

// -- start --------------------------------------------------------------------------------

const prisons = await prisonNames();
const showPrisons = () => {
  $("#prison-name").textContent = formatList(me.user.prison_ids.map((id) => (prisons[id] ? prisons[id].name : "")));
};
showPrisons();
onLocaleChange(showPrisons);
socket.start();
await loadDuty();
await syncQueue().catch(toastError);
canned = new CannedManager(picker, { prisons: me.user.prison_ids, names: prisons });
picker.load().then(() => canned.render());
links.load();
visits.load();
flags.load();
commentQueue.load();
api.get("/inmates", { limit: 500 }).then(
  (got) => {
    for (const inmate of got.inmates || []) visits.inmateNames.set(inmate.id, inmate.name);
    visits.render();
  },
  () => null,
);
setInterval(() => {
  if (document.visibilityState !== "visible") return;
  links.load();
  flags.load(); // flags never travel in frames: the queue is read, like the requests
}, REQUESTS_REFRESH_MS);
document.body.dataset.ready = "1";
