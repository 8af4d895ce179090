// Notifications (#/notifications): how I am told of an answer when the app is closed, my
// WeChat binding, and Web Push on this device. Also the return from WeChat's web
// authorization (/app?code=...&state=bind), which binds the OpenID (bindFromWeChat).

import { api } from "/static/lib/api.js";
import { h, replace } from "/static/lib/dom.js";
import { formatDateTime, t } from "/static/lib/i18n.js";
import { notice, passwordChangeForm, tx } from "/static/lib/ui.js";
import { toast, view } from "/static/app/view.js";

const CHANNELS = ["auto", "wechat", "push", "sms", "none"];

/** Register the service worker (push notifications; installable app). */
export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    return await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  } catch {
    return null; // not fatal: the app works without it, only without push
  }
}

const BIND_LATER = "kinline.wechat.bindAfterSignIn";

function wechatCode() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  return code && params.get("state") === "bind" ? code : null;
}

/** Signed out, back from WeChat's web authorization (the account's menu): sign in as the
 * relative bound to the code's OpenID. True when signed in. An OpenID bound to nobody: the
 * relative signs in with its password, then the app goes through the (silent, snsapi_base)
 * authorization once more to bind, since a code is good for one use only. */
export async function signInFromWeChat() {
  const code = wechatCode();
  if (!code) return false;
  history.replaceState(null, "", location.pathname + location.hash);
  try {
    await api.post("/wechat/signin", { code });
    return true;
  } catch (err) {
    if (err.code === "not_bound") sessionStorage.setItem(BIND_LATER, "1");
    return false;
  }
}

/** Back from WeChat's web authorization: bind the code, then drop it from the address. */
export async function bindFromWeChat() {
  const code = wechatCode();
  if (!code) {
    if (sessionStorage.getItem(BIND_LATER) !== "1") return;
    sessionStorage.removeItem(BIND_LATER); // signed in now: a fresh code, to bind with
    try {
      const binding = await api.get("/wechat/bind");
      if (!binding.bound) location.replace(binding.authorize_url);
    } catch {
      // the channel is off or unreachable: the notifications page still offers binding
    }
    return;
  }
  history.replaceState(null, "", location.pathname + location.hash);
  try {
    await api.post("/wechat/bind", { code });
    toast(t("notify.wechat.boundNow"));
  } catch (err) {
    toast(t("notify.wechat.bindFailed", { reason: err.message || err.code }));
  }
}

function inWeChat() {
  return /MicroMessenger/i.test(navigator.userAgent);
}

function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function keyBytes(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

export function notifyView() {
  const out = notice();
  const body = h("div", { id: "notify" }, tx("p", "common.loading", {}, { class: "muted" }));
  // one's own data, all of it, as one file (the right of access)
  const mine = h(
    "section",
    { class: "card", id: "my-data", aria: { labelledby: "my-data-title" } },
    tx("h2", "account.dataTitle", {}, { id: "my-data-title" }),
    tx("p", "account.dataWhat"),
    tx("a", "account.download", {}, { href: "/api/v1/me/export", download: "", class: "button", id: "download-my-data" }),
  );
  let settings = null;
  let binding = null;

  const load = async () => {
    try {
      settings = await api.get("/notifications");
      binding = settings.wechat_available ? await api.get("/wechat/bind") : null;
      out.clear();
    } catch (err) {
      out.error(err);
    }
    render();
  };

  const act = async (work) => {
    out.clear();
    try {
      await work();
    } catch (err) {
      out.error(err);
    }
    await load();
  };

  const channelChoice = () =>
    h(
      "fieldset",
      { class: "field notify-channel", id: "notify-channel" },
      tx("legend", "notify.channel.title"),
      CHANNELS.filter((c) => c !== "wechat" || (settings && settings.wechat_available)).map((channel) =>
        h(
          "label",
          { class: "notify-choice" },
          h("input", {
            type: "radio",
            name: "channel",
            value: channel,
            checked: settings.channel === channel,
            on: { change: () => act(() => api.put("/notifications", { channel })) },
          }),
          tx("span", `notify.channel.${channel}`),
        ),
      ),
      tx("small", "notify.channel.privacy", {}, { class: "hint" }),
    );

  const wechatPart = () => {
    if (!settings.wechat_available) return null;
    const parts = [tx("h2", "notify.wechat.title")];
    if (binding && binding.bound) {
      parts.push(
        h("p", { id: "wechat-bound" }, t("notify.wechat.bound", { openid: binding.openid, at: formatDateTime(binding.bound_at) })),
        tx("button", "notify.wechat.unbind", {}, { type: "button", class: "button", id: "wechat-unbind", on: { click: () => act(() => api.delete("/wechat/bind")) } }),
      );
    } else if (inWeChat() && binding) {
      parts.push(tx("a", "notify.wechat.bind", {}, { class: "button primary", id: "wechat-bind", href: binding.authorize_url }));
    } else {
      parts.push(tx("p", "notify.wechat.openInWeChat", {}, { class: "muted", id: "wechat-hint" }));
    }
    return h("section", { class: "card" }, parts);
  };

  const pushPart = () => {
    const parts = [tx("h2", "notify.push.title"), h("p", { class: "muted", id: "push-devices" }, t("notify.push.devices", { n: settings.devices.length }))];
    if (!pushSupported()) {
      parts.push(tx("p", "notify.push.unsupported", {}, { class: "muted", id: "push-unsupported" }));
    } else {
      parts.push(
        tx("button", "notify.push.enable", {}, { type: "button", class: "button primary", id: "push-enable", on: { click: () => act(enablePush) } }),
        " ",
        tx("button", "notify.push.disable", {}, { type: "button", class: "button", id: "push-disable", on: { click: () => act(disablePush) } }),
      );
    }
    return h("section", { class: "card" }, parts);
  };

  const render = () => {
    if (!settings) {
      replace(body);
      return;
    }
    replace(body, channelChoice(), wechatPart(), pushPart());
  };

  const el = h("section", { class: "view" }, tx("h1", "notify.title"), out, body, mine, passwordChangeForm());
  load();
  return view(el, { rerender: render });
}

async function enablePush() {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw { code: "push_denied", message: t("notify.push.denied") };
  const registration = (await registerServiceWorker()) && (await navigator.serviceWorker.ready);
  if (!registration) throw { code: "push_unsupported", message: t("notify.push.unsupported") };
  const { key } = await api.get("/push/key");
  const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
  await api.post("/push/subscriptions", subscription.toJSON());
  toast(t("notify.push.enabled"));
}

async function disablePush() {
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = registration && (await registration.pushManager.getSubscription());
  if (!subscription) return;
  await api.delete("/push/subscriptions", { body: { endpoint: subscription.endpoint } });
  await subscription.unsubscribe();
}
