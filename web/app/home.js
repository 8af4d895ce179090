// Home: my verified inmates (open the chat), with the newest message of each conversation and
// how many answers are unread, kept live; and what is still under review.

import { h, replace } from "/static/lib/dom.js";
import { formatDateTime, t } from "/static/lib/i18n.js";
import { shownBody } from "/static/lib/facts.js";
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
    (again) => [
      ctx.on("me", again),
      ctx.on("links", again),
      ctx.on("inmate", again),
      ctx.on("presence", again),
      ctx.on("conversation", again),
      ctx.on("conversations", again),
      ctx.on("messages", again),
      ctx.on("unread", again),
    ],
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
      unreadBadge(ctx, conv),
      conv && conv.state ? badge("convState", conv.state) : null,
    ),
    prison ? h("p", { class: "muted" }, prison.name) : null,
    lastLine(ctx, conv),
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

function unreadBadge(ctx, conv) {
  if (!conv) return null;
  const { n, more } = ctx.unreadIn(conv.id);
  if (!n) return null;
  const text = more ? t("home.unreadMore", { n }) : t("home.unread", { n });
  return h("span", { class: "badge badge-unread", data: { unread: n } }, text);
}

/** The newest message: who wrote it, its first line and when (text only, never HTML). */
function lastLine(ctx, conv) {
  const last = conv ? ctx.lastMessage(conv.id) : null;
  if (!last) return null;
  // a system card first: the away reply is stored under the relative's own id
  const who = last.kind === "system" ? t("chat.system") : last.sender && last.sender.id === ctx.userId ? t("chat.you") : last.sender.name;
  return h(
    "p",
    { class: "last-message" },
    h("span", { class: "who" }, `${who}: `),
    h("span", { class: "text" }, shownBody(last.kind, last.body)),
    h("time", { datetime: last.at, class: "muted" }, formatDateTime(last.at)),
  );
}
