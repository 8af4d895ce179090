// The relative app (/app): boot, the hash router, the views. Mobile first.
//
// Routes: #/ home (my inmates) | #/links | #/inmate/{id} (chat) | #/inmate/{id}/info |
// #/inmate/{id}/visits | #/announcements | #/complaints | #/prisons | #/prison/{id} |
// #/notifications; #/info and #/visits (the WeChat menu) open the first inmate's pages.
// Signed out: sign in / register (and the public prison pages).

import { onSignedOut } from "/static/lib/api.js";
import { $, h, replace } from "/static/lib/dom.js";
import { applyI18n, errorText, onLocaleChange, t } from "/static/lib/i18n.js";
import { connectionBanner, currentUser, markCurrentNav, notice, pageHeader, tx } from "/static/lib/ui.js";
import { authView } from "/static/app/auth.js";
import { chatView } from "/static/app/chat.js";
import { complaintsView } from "/static/app/complaints.js";
import { homeView } from "/static/app/home.js";
import { infoView } from "/static/app/info.js";
import { linksView } from "/static/app/links.js";
import { bindFromWeChat, notifyView, registerServiceWorker, signInFromWeChat } from "/static/app/notify.js";
import { announcementsView } from "/static/app/news.js";
import { prisonsView, prisonView } from "/static/app/prisons.js";
import { AppState } from "/static/app/state.js";
import { applyTextSize, textSizeSwitch } from "/static/app/textsize.js";
import { toast } from "/static/app/view.js";
import { visitsView } from "/static/app/visits.js";

const NAV = [
  ["#/", "nav.home"],
  ["#/links", "nav.links"],
  ["#/announcements", "nav.announcements"],
  ["#/complaints", "nav.complaints"],
  ["#/prisons", "nav.prisons"],
];
const TOOLS = [["#/notifications", "nav.notifications"]];

const ROUTES = [
  [/^#\/links$/, (ctx) => linksView(ctx)],
  [/^#\/inmate\/(\d+)$/, (ctx, id) => chatView(ctx, Number(id))],
  [/^#\/inmate\/(\d+)\/info$/, (ctx, id) => infoView(ctx, Number(id))],
  [/^#\/inmate\/(\d+)\/visits$/, (ctx, id) => visitsView(ctx, Number(id))],
  [/^#\/announcements$/, (ctx) => announcementsView(ctx)],
  [/^#\/complaints$/, (ctx) => complaintsView(ctx)],
  [/^#\/complaints\/about\/(link|visit|complaint)\/(\d+)$/, (ctx, kind, id) => complaintsView(ctx, { kind, id: Number(id) })],
  [/^#\/prisons$/, (ctx) => prisonsView(ctx)],
  [/^#\/prison\/(\d+)$/, (ctx, id) => prisonView(ctx, Number(id))],
  [/^#\/notifications$/, () => notifyView()],
  [/^#\/(info|visits)$/, (ctx, page) => firstInmate(ctx, page)],
];

function firstInmate(ctx, page) {
  const [first] = ctx.verifiedInmates;
  if (first === undefined) return homeView(ctx);
  return page === "info" ? infoView(ctx, first) : visitsView(ctx, first);
}

const root = $("#page");
let state = null; // AppState while signed in
let current = null; // the view on screen: {el, stop?, rerender?}

function route(ctx) {
  const hash = location.hash || "#/";
  for (const [pattern, make] of ROUTES) {
    const match = hash.match(pattern);
    if (match) return make(ctx, ...match.slice(1));
  }
  return homeView(ctx);
}

function publicRoute() {
  const hash = location.hash || "#/";
  if (/^#\/prisons$/.test(hash)) return prisonsView(null);
  const match = hash.match(/^#\/prison\/(\d+)$/);
  if (match) return prisonView(null, Number(match[1]));
  return null;
}

function show(main, view) {
  if (current && current.stop) current.stop();
  current = view;
  replace(main, view.el);
  const heading = view.el.querySelector("h1");
  if (heading && document.activeElement && document.activeElement !== document.body) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

async function start() {
  if (state) {
    state.stop();
    state = null;
  }
  if (current && current.stop) current.stop();
  current = null;
  applyI18n(document);
  const main = h("main", { id: "main" });
  let me;
  try {
    me = await currentUser();
  } catch (err) {
    const out = notice();
    out.error(err);
    replace(root, pageHeader({ titleKey: "brand.name" }), replace(main, out, tx("button", "common.retry", {}, { type: "button", on: { click: start } })));
    return;
  }
  if (!me && (await signInFromWeChat())) {
    start(); // signed in by the OpenID the WeChat code stands for
    return;
  }
  if (!me || me.user.role !== "relative") {
    renderSignedOut(main, me);
    return;
  }
  await bindFromWeChat(); // back from WeChat's web authorization with a code
  state = new AppState(me);
  const header = withTextSize(pageHeader({ titleKey: "brand.name", me, nav: NAV, tools: TOOLS, onSignOut: signedOut }));
  const banner = connectionBanner(state.socket);
  replace(root, header, banner, main);
  main.append(tx("p", "common.loading", {}, { class: "muted" }));
  state.on("send-error", (err) => {
    // refused for good while its chat is not on screen: say so now (the chat shows it too)
    const known = err.conv === null ? null : state.conversations.get(err.conv);
    const inmate = err.inmate ?? (known ? known.inmate_id : undefined);
    if (!state.viewing || state.viewing.inmate !== inmate) toast(t("chat.failedNotice", { reason: errorText(err) }));
  });
  state.socket.on("status", (s) => {
    document.body.dataset.socket = s.state; // for tests and styling
    if (s.state === "closed" && s.code === 4401) start();
  });
  try {
    await state.load(); // starts the socket once the latest history is here
  } catch (err) {
    const out = notice();
    out.error(err);
    replace(main, out);
    return;
  }
  const render = () => {
    markCurrentNav(header, location.hash || "#/");
    show(main, route(state));
  };
  window.onhashchange = render;
  render();
  const unread = () => showUnread(state, header);
  for (const what of ["messages", "unread", "conversations"]) state.on(what, unread);
  unread();
}

// Unread answers, whatever page is open: counted in the tab title ("(2) 亲情在线 · 家属端",
// as chat apps do) and on the home tab.
function showUnread(ctx, header) {
  const n = ctx ? ctx.unreadTotal() : 0;
  document.title = n ? `(${n}) ${t("app.title")}` : t("app.title");
  const home = header.querySelector('nav a[data-nav="#/"]');
  if (!home) return;
  let count = home.querySelector(".unread");
  if (!n) {
    if (count) count.remove();
    return;
  }
  if (!count) {
    count = h("span", { class: "unread", id: "unread-count" });
    home.append(" ", count);
  }
  count.textContent = String(n);
  count.setAttribute("aria-label", t("nav.unread", { n }));
}

function withTextSize(header) {
  header.querySelector(".header-tools").prepend(textSizeSwitch());
  return header;
}

function renderSignedOut(main, me) {
  const header = withTextSize(pageHeader({ titleKey: "brand.name", me, nav: [["#/", "nav.home"], ["#/prisons", "nav.prisons"]], onSignOut: signedOut }));
  replace(root, header, main);
  const render = () => {
    markCurrentNav(header, location.hash || "#/");
    const view = publicRoute() || authView({ me, onSignedIn: start });
    show(main, view);
  };
  window.onhashchange = render;
  render();
}

function signedOut() {
  location.hash = "#/";
  start();
}

// a 401 anywhere while signed in: the session ended; show sign-in again
onSignedOut(() => {
  if (state) start();
});

onLocaleChange(() => {
  applyI18n(document);
  if (current && current.rerender) current.rerender();
  const header = document.querySelector("header.top");
  if (header) {
    showUnread(state, header);
    const size = header.querySelector("#text-size");
    if (size) size.replaceWith(textSizeSwitch());
  }
});

applyTextSize();
registerServiceWorker();
start();
