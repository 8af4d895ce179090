// What the two staff pages (the duty console and the supervisor monitor) share: signing in
// with the right role, the top bar (language, connection state, sign out), toasts, and the
// one-second clock that drives every wait timer. Built on the shared library (web/lib): the
// API client, the socket, i18n and the text-only DOM builders.

import { api, ApiError, onSignedOut } from "/static/lib/api.js";
import { KinlineSocket } from "/static/lib/socket.js";
import { $, h, show, formValues } from "/static/lib/dom.js";
import { t, errorText, applyI18n, localeSwitcher, onLocaleChange, formatDuration } from "/static/lib/i18n.js";
import { currentUser, passwordChangeForm, signIn as logIn, signOut, tx } from "/static/lib/ui.js";

/** Put a translated string in `el` and keep it translated across language switches. */
export function i18nText(el, key, params = null) {
  el.dataset.i18n = key;
  if (params) el.dataset.i18nParams = JSON.stringify(params);
  else delete el.dataset.i18nParams;
  el.textContent = t(key, params || {});
  return el;
}

/** An element whose text is a catalog string (kept translated by applyI18n). */
export function tr(tag, key, attrs = {}, params = null) {
  return tx(tag, key, params || {}, attrs);
}

// -- toasts -------------------------------------------------------------------------------------

let toastTimer = null;

/** A short message at the bottom of the page (role=status, so screen readers hear it). */
export function toast(message, { bad = false } = {}) {
  const el = $("#toast");
  if (!el) return;
  el.textContent = message;
  el.classList.toggle("bad", bad);
  show(el, true);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => show(el, false), bad ? 6000 : 3500);
}

/** Show an error (ApiError, error frame, anything with a code) in the user's language. */
export function toastError(err) {
  if (!(err instanceof ApiError) && !(err && err.code)) console.error(err);
  toast(errorText(err), { bad: true });
}

// -- the clock ----------------------------------------------------------------------------------

const tickers = new Set();
let clockTimer = null;

/** Call `fn(nowMs)` every second (one timer for the whole page); returns an unsubscribe. */
export function everySecond(fn) {
  tickers.add(fn);
  if (clockTimer === null) {
    clockTimer = setInterval(() => {
      const now = Date.now();
      for (const tick of [...tickers]) tick(now);
    }, 1000);
  }
  return () => tickers.delete(fn);
}

/**
 * Server and browser clocks differ; a wait is counted from the server's `wait_s` when we
 * have one. `skew` is how far the browser's clock is ahead of the server's, in ms.
 */
export const clock = {
  skew: 0,
  learn(waitingSince, waitS) {
    if (!waitingSince || waitS === null || waitS === undefined) return;
    this.skew = Date.now() - Date.parse(waitingSince) - waitS * 1000;
  },
  since(iso, now = Date.now()) {
    return Math.max(0, Math.floor((now - this.skew - Date.parse(iso)) / 1000));
  },
};

/** A <span> whose text is the time elapsed since `iso`, ticking every second. */
export function waitTimer(iso, { target = null, onOverdue = null } = {}) {
  const el = h("span", { class: "timer", role: "timer" });
  const update = (now) => {
    if (!el.isConnected && el.dataset.started) return off();
    el.dataset.started = "1";
    const seconds = clock.since(iso, now);
    el.textContent = formatDuration(seconds);
    el.dataset.seconds = String(seconds);
    if (target !== null && seconds > target && !el.classList.contains("overdue")) {
      el.classList.add("overdue");
      if (onOverdue) onOverdue();
    }
  };
  const off = everySecond(update);
  update(Date.now());
  return el;
}

// -- one's own password ------------------------------------------------------------------------

/** A "change password" button in the top bar, before "sign out": it opens a dialog with the
 * shared form (POST /auth/password with the old one; the other sessions end). */
function offerPasswordChange() {
  const out = $("#sign-out");
  if (!out || $("#change-password")) return;
  const dialog = h(
    "dialog",
    { id: "password-dialog", class: "password-dialog", aria: { labelledby: "password-change-title" } },
    passwordChangeForm(),
    h("div", { class: "actions" }, tr("button", "common.close", { type: "button", id: "password-dialog-close", on: { click: () => dialog.close() } })),
  );
  const open = tr("button", "account.changePassword", { type: "button", id: "change-password", class: "link-button", on: { click: () => dialog.showModal() } });
  out.before(open);
  document.body.append(dialog);
}

// -- signing in ---------------------------------------------------------------------------------

/**
 * Resolve with `/me` of a signed-in user with one of `roles`: the existing session, or after
 * the sign-in form (#signin, #signin-form, #signin-error) is filled in. A session of another
 * role is told this page is not for it, and may sign in as someone else.
 */
export function signIn(roles) {
  return new Promise((resolve) => {
    const section = $("#signin");
    const form = $("#signin-form");
    const error = $("#signin-error");
    const wrongRole = () => t("session.wrongRole", { roles: roles.map((r) => t(`role.${r}`)).join(" / ") });
    const ask = (message = "") => {
      show(section, true);
      error.textContent = message;
      const first = form.querySelector("input");
      if (first) first.focus();
    };
    const accept = (me) => {
      if (!roles.includes(me.user.role)) return false;
      show(section, false);
      offerPasswordChange();
      resolve(me);
      return true;
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const { login, password } = formValues(form);
      if (!login || !password) {
        error.textContent = t("staff.signin.missing");
        return;
      }
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await logIn(login, password);
        const me = await currentUser();
        if (me && accept(me)) form.reset();
        else {
          await signOut().catch(() => null);
          ask(wrongRole());
        }
      } catch (err) {
        ask(errorText(err));
      } finally {
        button.disabled = false;
      }
    });
    currentUser().then(
      (me) => (me === null ? ask() : accept(me) || ask(wrongRole())),
      (err) => ask(errorText(err)),
    );
  });
}

// -- the top bar and the socket ----------------------------------------------------------------

const CONNECTION_KEYS = {
  connecting: "status.connecting",
  reconnecting: "staff.reconnecting",
  closed: "status.closed",
};

/** Language switch, who is signed in, sign out; the socket with its state shown. */
export function startStaff(me) {
  const slot = $("#locale-slot");
  if (slot && !slot.firstChild) slot.append(localeSwitcher(h));
  $("#who").textContent = me.user.name;
  const socket = new KinlineSocket({ user: me.user.id });
  const conn = $("#connection");
  socket.on("status", ({ state, code }) => {
    document.body.dataset.socket = state; // for tests and styling
    conn.className = `connection ${state}`;
    const key = CONNECTION_KEYS[state];
    if (key) i18nText(conn, key);
    else {
      delete conn.dataset.i18n;
      conn.textContent = "";
    }
    if (state === "closed" && code === 4401) signedOut();
  });
  const button = $("#sign-out");
  show(button, true);
  button.addEventListener("click", async () => {
    socket.stop();
    await signOut().catch(() => null); // signed out already: back to the form either way
    location.reload();
  });
  onSignedOut(signedOut);
  return socket;
}

let reloading = false;
function signedOut() {
  if (reloading) return;
  reloading = true;
  location.reload(); // the session ended: back to the sign-in form
}

/** First render of the static parts, and again after every language switch. */
export function startI18n(titleKey, badge = () => 0) {
  const retitle = () => {
    const n = badge();
    document.title = n > 0 ? `(${n}) ${t(titleKey)}` : t(titleKey);
  };
  applyI18n(document);
  retitle();
  onLocaleChange(retitle);
  return retitle;
}

/** Names of prisons by id (the public list); {} if it cannot be read. */
export async function prisonNames() {
  try {
    const listed = await api.get("/prisons");
    const prisons = Array.isArray(listed) ? listed : listed.prisons || [];
    return Object.fromEntries(prisons.map((p) => [p.id, p]));
  } catch {
    return {};
  }
}

/** Wire a role=tablist: click and arrow keys select; `onSelect(id)` after each change. */
export function tabs(list, onSelect = () => {}) {
  const all = [...list.querySelectorAll('[role="tab"]')];
  const select = (tab, focus = false) => {
    for (const other of all) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      const panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    }
    if (focus) tab.focus();
    onSelect(tab.id);
  };
  for (const tab of all) {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const i = all.indexOf(tab);
      let next = null;
      if (event.key === "ArrowRight" || event.key === "ArrowDown") next = all[(i + 1) % all.length];
      if (event.key === "ArrowLeft" || event.key === "ArrowUp") next = all[(i - 1 + all.length) % all.length];
      if (event.key === "Home") next = all[0];
      if (event.key === "End") next = all[all.length - 1];
      if (next) {
        event.preventDefault();
        select(next, true);
      }
    });
  }
  return { select: (id) => select(document.getElementById(id)) };
}

export { t };
