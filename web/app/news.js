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

/** The comments under one announcement (issue 16): the approved ones, my own (pending: "awaiting
 * approval", shown to me alone) and, when I am verified for an inmate, a form to add one. */
export function commentsBlock(a, ctx) {
  const list = h("ul", { class: "comments" });
  const out = notice();
  const canWrite = ctx.followedPrisons().length > 0;
  const form = canWrite
    ? h(
        "form",
        { class: "comment-form" },
        h("label", {}, h("span", {}, t("comments.yours")), h("textarea", { name: "body", rows: 2, maxlength: 500, required: true })),
        h("button", { type: "submit", class: "primary" }, t("comments.send")),
      )
    : tx("p", "comments.verifiedOnly", {}, { class: "muted" });
  const summary = h("summary", {}, t("comments.title"));
  const details = h("details", { class: "app-comments", data: { comments: a.id } }, summary, list, out, form);
  let loaded = false;
  const render = (items) => {
    summary.textContent = items.length ? t("comments.titleCount", { n: items.length }) : t("comments.title");
    replace(
      list,
      ...(items.length
        ? items.map((c) =>
            h(
              "li",
              { class: ["comment", c.state !== "approved" && "mine-pending"], data: { comment: c.id, state: c.state } },
              h("p", { class: "who" }, c.author, " · ", formatDateTime(c.at)),
              h("p", { class: "pre" }, c.body),
              c.state === "approved" ? null : h("p", { class: "state" }, t(`comments.state.${c.state}`)),
            ),
          )
        : [tx("li", "comments.none", {}, { class: "muted" })]),
    );
  };
  const load = async () => {
    try {
      const got = await api.get(`/announcements/${a.id}/comments`);
      render(got.items || []);
      loaded = true;
      out.clear();
    } catch (err) {
      out.error(err);
    }
  };
  details.addEventListener("toggle", () => {
    if (details.open && !loaded) load();
  });
  if (canWrite) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = form.elements.body.value.trim();
      if (!text) return;
      form.querySelector("button").disabled = true;
      try {
        await api.post(`/announcements/${a.id}/comments`, { body: text });
        form.reset();
        await load();
        out.show(t("comments.sent"));
      } catch (err) {
        out.error(err);
      } finally {
        form.querySelector("button").disabled = false;
      }
    });
  }
  return details;
}

export function announcementsView(ctx) {
  const list = h("ul", { class: "list", id: "announcements" });
  const out = notice();
  let items = new Map(); // id -> announcement
  const render = () => {
    const sorted = [...items.values()].sort((a, b) => b.id - a.id);
    const item = (a) => {
      const li = announcementItem(a, ctx.prisons, 2);
      li.append(commentsBlock(a, ctx));
      return li;
    };
    replace(list, ...(sorted.length ? sorted.map(item) : [tx("li", "announcements.none", {}, { class: "muted empty" })]));
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
