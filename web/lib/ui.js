// Shared page furniture built on dom.js and i18n.js: the page header, the sign-in form, the
// connection banner, notices, the boot sequence. Everything is text-only (see dom.js).
//
//   import { boot } from "/static/lib/ui.js";
//   boot({ roles: ["officer"], title: "console.title", render: ({ me, main, header }) => {...} });

import { api, ApiError, onSignedOut } from "/static/lib/api.js";
import { $, clear, formValues, h, replace } from "/static/lib/dom.js";
import { applyI18n, errorText, localeSwitcher, onLocaleChange, t } from "/static/lib/i18n.js";

/** GET /me, or null when not signed in. Other errors are thrown. */
export async function currentUser() {
  try {
    return await api.get("/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export async function signIn(login, password) {
  return api.post("/auth/login", { login, password });
}

/** End the session (the server also closes this session's sockets with 4401). */
export async function signOut() {
  try {
    await api.post("/auth/logout");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
  }
}

/** A text element that re-translates itself on a language switch: tx("p", "key", {n: 3}). */
export function tx(tag, key, params = {}, attrs = {}) {
  const el = h(tag, attrs, t(key, params));
  el.dataset.i18n = key;
  if (Object.keys(params).length) el.dataset.i18nParams = JSON.stringify(params);
  return el;
}

/** A live region for outcomes and errors: notice.show(text, "error"|"ok"), notice.clear(). */
export function notice(attrs = {}) {
  const el = h("p", { class: "notice", role: "status", aria: { live: "polite" }, hidden: true, ...attrs });
  el.show = (message, kind = "ok") => {
    el.textContent = message;
    el.className = `notice notice-${kind}`;
    el.hidden = false;
  };
  el.error = (err) => el.show(errorText(err), "error");
  el.clear = () => {
    el.textContent = "";
    el.hidden = true;
  };
  return el;
}

/** A labelled field: label above, control below, a hint if given. */
export function field(labelKey, control, hintKey = null) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  if (hintKey) control.setAttribute("aria-describedby", `${id}-hint`);
  return h(
    "div",
    { class: "field" },
    tx("label", labelKey, {}, { for: id }),
    control,
    hintKey ? tx("small", hintKey, {}, { class: "hint", id: `${id}-hint` }) : null,
  );
}

/** Run an async form action with the submit button disabled and errors shown in `out`. */
export function onSubmit(form, out, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button, input[type=submit]");
    buttons.forEach((b) => (b.disabled = true));
    out.clear();
    try {
      await action(formValues(form), form);
    } catch (err) {
      if (err instanceof ApiError || (err && err.code)) {
        out.error(err);
        if (err.field && form.elements[err.field]) form.elements[err.field].focus();
      } else {
        console.error(err);
        out.error({ code: "internal" });
      }
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
  return form;
}

/** Change one's own password with the old one (POST /auth/password): every other session of
 * the account ends, this one goes on. */
export function passwordChangeForm() {
  const out = notice();
  const form = h(
    "form",
    { class: "card form", id: "password-change", aria: { labelledby: "password-change-title" } },
    tx("h2", "account.passwordTitle", {}, { id: "password-change-title" }),
    field("account.oldPassword", h("input", { name: "old_password", type: "password", required: true, autocomplete: "current-password" })),
    field("auth.newPassword", h("input", { name: "new_password", type: "password", required: true, autocomplete: "new-password", minlength: 10 })),
    out,
    h("div", { class: "actions" }, tx("button", "account.changePassword", {}, { type: "submit", class: "primary" })),
  );
  onSubmit(form, out, async (values) => {
    const done = await api.post("/auth/password", { old_password: values.old_password, new_password: values.new_password });
    form.reset();
    out.show(t("account.passwordChanged", { n: done.sessions_ended }), "ok");
  });
  return form;
}

/** The sign-in form; `onSignedIn(loginReply)` after success. */
export function signInForm({ onSignedIn, titleKey = "session.signInTitle", loginKey = "session.login", loginType = "text" }) {
  const out = notice();
  const form = h(
    "form",
    { class: "card form", aria: { labelledby: "signin-title" } },
    tx("h2", titleKey, {}, { id: "signin-title" }),
    field(loginKey, h("input", { name: "login", type: loginType, required: true, autocomplete: "username" })),
    field("session.password", h("input", { name: "password", type: "password", required: true, autocomplete: "current-password" })),
    out,
    h("div", { class: "actions" }, tx("button", "session.signIn", {}, { type: "submit", class: "primary" })),
  );
  return onSubmit(form, out, async (values) => {
    const reply = await signIn(values.login, values.password);
    await onSignedIn(reply);
  });
}

/** The "reconnecting" banner, driven by a KinlineSocket's status events. */
export function connectionBanner(socket) {
  const el = h("div", { class: "banner", role: "status", aria: { live: "assertive" }, hidden: true, data: { testid: "connection" } });
  let shown = false;
  socket.on("status", (status) => {
    el.dataset.state = status.state;
    if (status.state === "reconnecting") {
      el.textContent = t("status.reconnecting");
      el.dataset.i18n = "status.reconnecting";
      el.className = "banner banner-warn";
      el.hidden = false;
      shown = true;
    } else if (status.state === "closed" && status.code !== 1000) {
      el.textContent = t("status.closed");
      el.dataset.i18n = "status.closed";
      el.className = "banner banner-error";
      el.hidden = false;
    } else if (status.state === "connected" && shown) {
      el.hidden = true;
      shown = false;
    }
  });
  return el;
}

/** The page header: brand, optional nav, language switch, user and sign-out. */
export function pageHeader({ titleKey = "brand.name", me = null, nav = [], tools = [], onSignOut = null } = {}) {
  const right = h("div", { class: "header-tools" }, localeSwitcher());
  if (me) {
    right.append(
      h("span", { class: "who" }, me.user.name),
      // settings of one's own (not a main tab: the tab row must fit a phone)
      ...tools.map(([href, key]) => tx("a", key, {}, { href, class: "header-link", data: { nav: href } })),
      tx("button", "session.signOut", {}, {
        type: "button",
        class: "link-button",
        on: {
          click: async () => {
            await signOut();
            if (onSignOut) onSignOut();
            else location.reload();
          },
        },
      }),
    );
  }
  const header = h(
    "header",
    { class: "top" },
    h("div", { class: "top-row" }, tx("a", titleKey, {}, { class: "brand", href: location.pathname }), right),
  );
  if (nav.length) {
    header.append(
      h(
        "nav",
        { class: "tabs", aria: { label: t("common.mainNav") }, data: { i18nAriaLabel: "common.mainNav" } },
        nav.map(([href, key]) => tx("a", key, {}, { href, data: { nav: href } })),
      ),
    );
  }
  return header;
}

/** Mark the nav link of the current hash as current (aria-current="page"). */
export function markCurrentNav(root, hash) {
  for (const a of root.querySelectorAll("[data-nav]")) {
    const target = a.dataset.nav;
    const current = target === "#/" ? hash === "#/" || hash === "" : hash.startsWith(target);
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

/**
 * Boot a page: translate the static markup, find out who is signed in, and either show the
 * sign-in form or call render({ me, header, main }). `roles` limits who may use the page.
 * The page's HTML needs <div id="page"></div>; boot fills it with a header and a <main>.
 * render may return a teardown function (stop sockets, timers); it runs before the page is
 * started again (after a 401 anywhere, i.e. the session ended, or a sign-in).
 */
export async function boot({ roles = null, render, titleKey = "brand.name", signIn: signInOptions = {}, nav = [] }) {
  applyI18n(document);
  const root = $("#page") || document.body;
  const main = h("main", { id: "main", tabindex: "-1" });
  let signedIn = false;
  let teardown = null; // what render() returned: called before the page starts again
  const start = async () => {
    signedIn = false;
    if (teardown) {
      const done = teardown;
      teardown = null;
      done();
    }
    let me;
    try {
      me = await currentUser();
    } catch (err) {
      const out = notice();
      out.error(err);
      replace(root, pageHeader({ titleKey }), replace(main, out, tx("button", "common.retry", {}, { type: "button", on: { click: start } })));
      return;
    }
    if (!me) {
      replace(root, pageHeader({ titleKey }), clear(main));
      main.append(signInForm({ ...signInOptions, onSignedIn: () => start() }));
      return;
    }
    if (roles && !roles.includes(me.user.role)) {
      const names = roles.map((r) => t(`role.${r}`)).join(" / ");
      replace(root, pageHeader({ titleKey, me }), replace(main, h("p", { class: "notice notice-error" }, t("session.wrongRole", { roles: names }))));
      return;
    }
    const header = pageHeader({ titleKey, me, nav });
    replace(root, header, clear(main));
    signedIn = true;
    const result = await render({ me, header, main, restart: start });
    teardown = typeof result === "function" ? result : null;
  };
  onSignedOut(() => {
    // a 401 anywhere: the session ended (signed out elsewhere, expired); start again
    if (signedIn) {
      signedIn = false;
      setTimeout(start, 0);
    }
  });
  onLocaleChange(() => applyI18n(document));
  await start();
}
