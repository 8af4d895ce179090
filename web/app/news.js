// Announcements of the prisons I follow and of the bureau, newest first, live.

import { api } from "/static/lib/api.js";
import { h, replace } from "/static/lib/dom.js";
import { formatDate, formatDateTime, t } from "/static/lib/i18n.js";
import { notice, tx } from "/static/lib/ui.js";
import { toast, view } from "/static/app/view.js";

/** One announcement; its title a heading one level below the list's (`level`). */
export function announcementItem(a, prisons, level = 3) {
  const prisonId = a.prison_id ?? a.prison ?? null;
  const prison = prisonId !== null && prisons ? prisons.get(prisonId) : null;
  const at = a.created_at ?? a.at;
  return h(
    "li",
    { class: "app-announcement", data: { announcement: a.id } },
    h(`h${level}`, {}, a.title),
    h("p", { class: "when" }, prisonId === null ? t("announcements.bureau") : prison ? prison.name : "", " · ", formatDateTime(at)),
    a.open_day ? h("p", {}, h("strong", {}, t("announcements.openDay", { date: formatDate(a.open_day) }))) : null,
    h("p", { class: "pre" }, a.body),
  );
}

export function announcementsView(ctx) {
  const list = h("ul", { class: "list", id: "announcements" });
  const out = notice();
  let items = new Map(); // id -> announcement
  const render = () => {
    const sorted = [...items.values()].sort((a, b) => b.id - a.id);
    replace(list, ...(sorted.length ? sorted.map((a) => announcementItem(a, ctx.prisons, 2)) : [tx("li", "announcements.none", {}, { class: "muted empty" })]));
  };
  const load = async () => {
    const prisons = ctx.followedPrisons();
    try {
      const replies = await Promise.all(prisons.length ? prisons.map((p) => api.get("/announcements", { prison: p })) : [api.get("/announcements")]);
      items = new Map();
      for (const reply of replies) for (const a of reply.announcements || []) items.set(a.id, a);
      out.clear();
    } catch (err) {
      out.error(err);
    }
    render();
  };
  const el = h("section", { class: "view" }, tx("h1", "announcements.title"), out, list);
  render();
  load();
  const off = ctx.on("announcement", (a) => {
    items.set(a.id, { ...a, prison_id: a.prison ?? null, created_at: a.at });
    render();
    toast(t("announcements.new"));
  });
  return view(el, { stop: off, rerender: render });
}
