// Small pieces the relative app's views share.

import { h } from "/static/lib/dom.js";
import { t, tOr } from "/static/lib/i18n.js";
import { tx } from "/static/lib/ui.js";

/** A view: its element, and what to do when it leaves the screen or the language changes. */
export function view(el, { stop = null, rerender = null } = {}) {
  return { el, stop, rerender };
}

/** A view that re-renders itself entirely (into a stable container) on every change. */
export function liveView(render, subscribe = () => []) {
  const el = h("section", { class: "view" });
  const again = () => render(el);
  const offs = subscribe(again) || [];
  again();
  return view(el, { stop: () => offs.forEach((off) => off()), rerender: again });
}

/** A state badge: class badge-<state>, text from `<prefix>.<state>` (raw state if unknown). */
export function badge(prefix, state) {
  const label = tOr(`${prefix}.${state}`, state);
  return h("span", { class: ["badge", `badge-${state}`], data: { state } }, label);
}

/** The tabs of one inmate: chat, information, visits. */
export function inmateTabs(inmateId, active) {
  const tabs = [
    ["", "inmate.tabs.chat"],
    ["/info", "inmate.tabs.info"],
    ["/visits", "inmate.tabs.visits"],
  ];
  return h(
    "nav",
    { class: "subtabs", aria: { label: t("inmate.tabs.label") }, data: { i18nAriaLabel: "inmate.tabs.label" } },
    tabs.map(([suffix, key]) =>
      tx("a", key, {}, { href: `#/inmate/${inmateId}${suffix}`, aria: { current: suffix === active ? "page" : null } }),
    ),
  );
}

/** The heading of an inmate's pages: name, number. */
export function inmateHead(ctx, inmateId) {
  const label = ctx.inmateLabel(inmateId);
  return h(
    "div",
    { class: "app-inmate-head" },
    h("h1", {}, label.name),
    label.number ? h("span", { class: "muted" }, t("inmate.number", { number: label.number })) : null,
  );
}

/** A transient message at the bottom of the screen. */
export function toast(text) {
  const el = h("div", { class: "toast", role: "status", aria: { live: "polite" } }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), 4000);
}
