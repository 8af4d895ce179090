// The public pages of the prisons (no sign-in needed): the list, and one prison with its
// supervisors (name, title, photo, address, phone), visit rules, announcements and figures.

import { api } from "/static/lib/api.js";
import { h, replace } from "/static/lib/dom.js";
import { formatDuration, formatNumber, t } from "/static/lib/i18n.js";
import { notice, tx } from "/static/lib/ui.js";
import { announcementItem } from "/static/app/news.js";
import { view } from "/static/app/view.js";
import { rulesList } from "/static/app/visits.js";

export function prisonsView() {
  const list = h("ul", { class: "list", id: "prisons" });
  const out = notice();
  let prisons = null;
  const render = () => {
    if (prisons === null) replace(list, tx("li", "common.loading", {}, { class: "muted" }));
    else if (!prisons.length) replace(list, tx("li", "prisons.none", {}, { class: "muted" }));
    else {
      replace(list, 
        ...prisons.map((p) =>
          h("li", { data: { prison: p.id } }, h("a", { href: `#/prison/${p.id}` }, h("strong", {}, p.name)), " ", h("span", { class: "muted" }, `${p.code} · ${p.city}`)),
        ),
      );
    }
  };
  render();
  api
    .get("/prisons")
    .then((reply) => {
      prisons = reply.prisons || [];
      render();
    })
    .catch((err) => out.error(err));
  return view(h("section", { class: "view" }, tx("h1", "prisons.title"), out, list), { rerender: render });
}

function supervisorItem(s) {
  return h(
    "li",
    { class: "person", data: { supervisor: s.id } },
    s.photo ? h("img", { src: s.photo, alt: t("prisons.photo", { name: s.name }), width: 64, height: 64, loading: "lazy" }) : null,
    h(
      "div",
      {},
      h("strong", {}, s.name),
      s.title ? h("p", { class: "muted" }, s.title) : null,
      s.phone ? h("p", {}, t("prisons.phone", { phone: "" }), h("a", { href: `tel:${s.phone.replace(/[^0-9+]/g, "")}` }, s.phone)) : null,
      s.address ? h("p", {}, t("prisons.address", { address: s.address })) : null,
    ),
  );
}

function figuresBox(f) {
  if (!f || !f.cycles) return tx("p", "prisons.noFigures", {}, { class: "muted" });
  const pct = f.within_5_min === null || f.within_5_min === undefined ? "—" : formatNumber(f.within_5_min, { style: "percent", maximumFractionDigits: 0 });
  return h(
    "ul",
    {},
    h("li", {}, t("prisons.cycles", { n: f.cycles })),
    f.median_s !== null && f.median_s !== undefined ? h("li", {}, t("prisons.median", { t: formatDuration(f.median_s) })) : null,
    f.p90_s !== null && f.p90_s !== undefined ? h("li", {}, t("prisons.p90", { t: formatDuration(f.p90_s) })) : null,
    h("li", {}, t("prisons.within5", { pct })),
  );
}

export function prisonView(ctx, id) {
  const body = h("div", {}, tx("p", "common.loading", {}, { class: "muted" }));
  const el = h("section", { class: "view", id: "prison" }, body);
  let page = null;
  const render = () => {
    if (!page) return;
    replace(body, 
      h("h1", {}, page.name),
      h("p", { class: "muted" }, `${page.code} · ${page.city}`),
      h(
        "section",
        { class: "card" },
        tx("h2", "prisons.supervisors"),
        page.supervisors && page.supervisors.length
          ? h("ul", { class: "list", id: "supervisors" }, page.supervisors.map(supervisorItem))
          : tx("p", "prisons.noSupervisors", {}, { class: "muted" }),
      ),
      h("section", { class: "card" }, tx("h2", "visits.rules"), rulesList(page.visit_rules)),
      h("section", { class: "card" }, h("h2", {}, t("prisons.figures", { days: (page.figures && page.figures.days) || 30 })), figuresBox(page.figures)),
      h(
        "section",
        { class: "card" },
        tx("h2", "announcements.title"),
        page.announcements && page.announcements.length
          ? h("ul", { class: "list" }, page.announcements.map((a) => announcementItem(a, ctx ? ctx.prisons : null)))
          : tx("p", "announcements.none", {}, { class: "muted" }),
      ),
      h("p", {}, tx("a", "common.back", {}, { href: "#/prisons" })),
    );
  };
  api
    .get(`/prisons/${id}`)
    .then((reply) => {
      page = reply;
      render();
    })
    .catch((err) => {
      const out = notice();
      out.error(err);
      replace(body, out);
    });
  return view(el, { rerender: render });
}
