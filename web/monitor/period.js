// Figures for a whole period (GET /stats/period): the totals as labelled numbers, the ratings
// (average and a bar per star count, each bar labelled with its count), and each officer's response figures
// as a table. Used by the supervisor's monitor and the officer's console. Seconds are shown
// as seconds or minutes (formatDuration), never as a bare number of seconds.

import { api } from "/static/lib/api.js";
import { h } from "/static/lib/dom.js";
import { t, formatDuration, formatNumber } from "/static/lib/i18n.js";

const dash = "—";
const seconds = (s) => (s === null || s === undefined ? dash : formatDuration(s));
const share = (v) => (v === null || v === undefined ? dash : formatNumber(v, { style: "percent", maximumFractionDigits: 0 }));

/** The period's figures of `prison` (all the caller may read when null), or throws. */
export async function loadPeriod({ prison = null, from = null, to = null } = {}) {
  const params = {};
  if (prison !== null) params.prison = prison;
  if (from) params.from = from;
  if (to) params.to = to;
  return api.get("/stats/period", params);
}

function totals(p) {
  const x = p.totals;
  const items = [
    ["period.cycles", formatNumber(x.cycles)],
    ["period.answered", formatNumber(x.answered)],
    ["period.median", seconds(x.median_s)],
    ["period.p90", seconds(x.p90_s)],
    ["period.within5", share(x.within_5_min)],
    ["period.late", formatNumber(x.late)],
    ["period.resolved", formatNumber(x.resolved)],
    ["period.conversations", formatNumber(x.conversations)],
    ["period.messages", formatNumber(x.messages)],
  ];
  return h(
    "section",
    { class: "period-totals" },
    h("h3", {}, t("period.totals", { target: formatDuration(x.target_s) })),
    h(
      "dl",
      { class: "totals" },
      items.map(([key, value]) => h("div", { data: { figure: key } }, h("dt", {}, t(key)), h("dd", {}, value))),
    ),
  );
}

/** The 1-to-5 distribution as labelled bars (HTML <meter>s, readable at any width; the count
 * written beside each bar), five stars first. */
function stars(r) {
  const most = Math.max(1, ...r.distribution);
  return h(
    "figure",
    { class: "stars-chart" },
    h("figcaption", {}, t("period.distribution")),
    h(
      "ol",
      { class: "stars" },
      [5, 4, 3, 2, 1].map((n) => {
        const count = r.distribution[n - 1];
        const label = t("period.stars", { n });
        return h(
          "li",
          { data: { stars: n } },
          h("span", { class: "label" }, label),
          h("meter", { min: 0, max: most, value: count, aria: { label: `${label}: ${count}` } }),
          h("span", { class: "n" }, formatNumber(count)),
        );
      }),
    ),
  );
}

function ratings(p) {
  const r = p.ratings;
  const average =
    r.average === null ? t("period.noRatings") : t("period.average", { avg: formatNumber(r.average, { maximumFractionDigits: 1 }) });
  return h(
    "section",
    { class: "period-ratings" },
    h("h3", {}, t("period.ratings")),
    h(
      "div",
      { class: "ratings" },
      h("div", {}, h("p", { class: "average" }, average), h("p", { class: "sub" }, t("period.ratingCount", { n: r.count }))),
      stars(r),
    ),
  );
}

function officers(p) {
  const cols = [
    ["period.officer", (o) => o.name, "name"],
    ["period.answered", (o) => formatNumber(o.answered)],
    ["period.median", (o) => seconds(o.median_s)],
    ["period.p90", (o) => seconds(o.p90_s)],
    ["period.within5", (o) => share(o.within_5_min)],
    ["period.messages", (o) => formatNumber(o.messages)],
    ["period.resolved", (o) => formatNumber(o.resolved)],
    [
      "period.rating",
      (o) => (o.rating_average === null ? dash : t("period.ratingOf", { avg: formatNumber(o.rating_average, { maximumFractionDigits: 1 }), n: o.rated })),
    ],
  ];
  return h(
    "section",
    { class: "period-officers" },
    h("h3", {}, t("period.officers")),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "officers-table" },
        h("thead", {}, h("tr", {}, cols.map(([k], i) => h("th", { scope: "col", class: i ? "num" : null }, t(k))))),
        h(
          "tbody",
          {},
          p.officers.length
            ? p.officers.map((o) =>
                h("tr", { data: { officer: o.officer_id } }, cols.map(([, f, cls], i) => h("td", { class: cls || (i ? "num" : null) }, f(o)))),
              )
            : h("tr", {}, h("td", { colspan: cols.length }, t("period.noOfficers"))),
        ),
      ),
    ),
  );
}

/** The view of one prison's period figures. */
export function periodView(prison) {
  return h("div", { class: "period", data: { prison: prison.prison_id } }, totals(prison), ratings(prison), officers(prison));
}
