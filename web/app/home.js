// Home: my verified inmates (open the chat), and what is still under review.

import { h, replace } from "/static/lib/dom.js";
import { t } from "/static/lib/i18n.js";
import { tx } from "/static/lib/ui.js";
import { badge, liveView } from "/static/app/view.js";

export function homeView(ctx) {
  return liveView(
    (el) => {
      const inmates = ctx.verifiedInmates;
      const pending = ctx.links.filter((l) => l.state === "pending").length;
      replace(el, 
        tx("h1", "home.title"),
        inmates.length
          ? h(
              "ul",
              { class: "list", id: "inmates" },
              inmates.map((id) => inmateItem(ctx, id)),
            )
          : tx("p", "home.noInmates", {}, { class: "notice notice-warn" }),
        pending ? h("p", { class: "muted" }, t("home.pendingLinks", { n: pending })) : null,
        h("p", {}, tx("a", "home.requestLink", {}, { href: "#/links", class: "button" })),
      );
    },
    (again) => [ctx.on("me", again), ctx.on("links", again), ctx.on("inmate", again), ctx.on("presence", again), ctx.on("conversation", again)],
  );
}

function inmateItem(ctx, id) {
  const label = ctx.inmateLabel(id);
  const prison = ctx.prisons.get(ctx.prisonOfInmate(id));
  const conv = ctx.conversationOf(id);
  const onDuty = ctx.presence.get(ctx.prisonOfInmate(id));
  return h(
    "li",
    { data: { inmate: id } },
    h(
      "div",
      { class: "row" },
      h("div", { class: "grow" }, h("strong", {}, label.name), " ", h("span", { class: "muted" }, label.number)),
      conv && conv.state ? badge("convState", conv.state) : null,
    ),
    prison ? h("p", { class: "muted" }, prison.name) : null,
    onDuty !== undefined ? h("p", { class: "muted" }, onDuty ? t("chat.onDuty", { n: onDuty }) : t("chat.noneOnDuty")) : null,
    h(
      "div",
      { class: "actions" },
      tx("a", "home.open", {}, { href: `#/inmate/${id}`, class: "button primary" }),
      tx("a", "inmate.tabs.info", {}, { href: `#/inmate/${id}/info`, class: "button" }),
      tx("a", "inmate.tabs.visits", {}, { href: `#/inmate/${id}/visits`, class: "button" }),
    ),
  );
}
