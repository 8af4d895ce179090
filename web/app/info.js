// The inmate's information card (GET /inmates/{id}), refreshed live on `info` events:
// daily activity, work, health, term and its changes, pocket money and its movements, visit
// eligibility. Money is integer fen, shown for the locale.

import { h, replace } from "/static/lib/dom.js";
import { errorText, formatDate, formatDateTime, formatMoney, formatShortDate, t, tOr } from "/static/lib/i18n.js";
import { tx } from "/static/lib/ui.js";
import { inmateHead, inmateTabs, toast, view } from "/static/app/view.js";

const MOVEMENTS_SHOWN = 20;

export function infoView(ctx, inmateId) {
  const body = h("div", { id: "info" });
  const el = h("section", { class: "view" }, inmateHead(ctx, inmateId), inmateTabs(inmateId, "/info"), body);
  const render = () => {
    const card = ctx.inmates.get(inmateId);
    if (!card) {
      replace(body, tx("p", "common.loading", {}, { class: "muted" }));
      return;
    }
    replace(body, ...renderCard(card));
  };
  if (!ctx.verifiedInmates.includes(inmateId)) {
    replace(body, h("p", { class: "notice notice-error" }, errorText({ code: "not_found" })));
    return view(el);
  }
  if (!ctx.inmates.has(inmateId)) {
    ctx.loadInmate(inmateId).catch((err) => replace(body, h("p", { class: "notice notice-error" }, errorText(err))));
  }
  render();
  const offs = [
    ctx.on("inmate", (card) => card.id === inmateId && render()),
    ctx.on("info", (ev) => ev.inmate === inmateId && toast(t("info.updated"))),
  ];
  return view(el, { stop: () => offs.forEach((off) => off()), rerender: render });
}

function stamp(part) {
  return part && part.updated_at ? h("p", { class: "muted" }, t("info.updatedAt", { at: formatDateTime(part.updated_at) })) : null;
}

function section(titleKey, part, ...content) {
  const filled = content.flat().filter(Boolean);
  return h(
    "section",
    { class: "card", data: { part: part.name } },
    tx("h2", titleKey),
    filled.length ? filled : tx("p", "info.empty", {}, { class: "muted" }),
    stamp(part.value),
  );
}

// consent (issue 15): the categories the inmate shares with this relative, by card part
const PART_TITLES = {
  activity: "info.activity",
  work: "info.work",
  health: "info.health",
  term: "info.term",
  money: "info.balance",
  visits: "info.visit",
};

/** "Shared with you": what the inmate shares with this relative; the rest is its choice. */
function sharedWithYou(card) {
  const shared = card.shared || [];
  const withheld = card.withheld || [];
  return h(
    "section",
    { class: "card shared", id: "shared" },
    tx("h2", "consent.sharedTitle"),
    shared.length
      ? h("ul", { class: "chips" }, shared.map((part) => h("li", { data: { part } }, t(PART_TITLES[part]))))
      : tx("p", "consent.nothingShared", {}, { class: "muted" }),
    withheld.length ? tx("p", "consent.restIsChoice", {}, { class: "muted", id: "rest-choice" }) : null,
  );
}

/** A part the inmate chose not to share with this relative. */
function withheldSection(part) {
  return h(
    "section",
    { class: "card withheld", data: { part, withheld: "1" } },
    tx("h2", PART_TITLES[part]),
    tx("p", "consent.withheldPart", {}, { class: "muted" }),
  );
}

export function renderCard(card) {
  const withheld = new Set(card.withheld || []);
  const sections = renderParts(card).map((el) => (withheld.has(el.dataset.part) ? withheldSection(el.dataset.part) : el));
  return card.shared ? [sharedWithYou(card), ...sections] : sections;
}

function renderParts(card) {
  const info = card.info || {};
  const activity = info.activity || {};
  const work = info.work || {};
  const health = info.health || {};
  const term = info.term || {};
  const money = info.money || {};
  const visits = info.visits || {};
  const movements = (money.movements || []).slice(-MOVEMENTS_SHOWN).reverse();
  return [
    section("info.activity", { name: "activity", value: activity }, activity.text ? h("p", { class: "pre" }, activity.text) : null),
    section("info.work", { name: "work", value: work }, work.assignment ? h("p", { class: "pre" }, work.assignment) : null),
    section(
      "info.health",
      { name: "health", value: health },
      health.status ? h("p", {}, h("strong", {}, tOr(`health.${health.status}`, health.status))) : null,
      health.note ? h("p", { class: "pre" }, health.note) : null,
    ),
    section(
      "info.term",
      { name: "term", value: term },
      term.original || term.start || term.expected_release
        ? h(
            "dl",
            { class: "kv" },
            term.original ? [h("dt", {}, t("info.sentence")), h("dd", {}, term.original)] : null,
            term.start ? [h("dt", {}, t("info.start")), h("dd", {}, formatDate(term.start))] : null,
            term.expected_release ? [h("dt", {}, t("info.release")), h("dd", { id: "release" }, formatDate(term.expected_release))] : null,
          )
        : null,
      term.changes && term.changes.length
        ? [
            tx("h3", "info.termChanges"),
            h(
              "ul",
              { class: "list" },
              term.changes.map((c) =>
                h(
                  "li",
                  {},
                  h("strong", {}, formatDate(c.decided_on), " · ", tOr(`termKind.${c.kind}`, c.kind)),
                  h("p", {}, c.decision),
                  h("p", { class: "muted" }, t("info.newRelease", { date: formatDate(c.new_release) })),
                ),
              ),
            ),
          ]
        : null,
    ),
    section(
      "info.balance",
      { name: "money", value: money },
      h("p", { class: "balance" }, h("strong", { id: "balance" }, formatMoney(money.balance_fen || 0))),
      movements.length
        ? [
            tx("h3", "info.movements"),
            h(
              "ul",
              { class: "list movements", id: "movements" },
              movements.map((m) =>
                h(
                  "li",
                  { data: { kind: m.kind } },
                  h(
                    "div",
                    { class: "row" },
                    h("span", { class: "grow" }, m.note || tOr(`movementKind.${m.kind}`, m.kind)),
                    h("strong", { class: ["nowrap", "amount", m.kind] }, (m.kind === "spending" ? "−" : "+") + formatMoney(m.amount_fen)),
                  ),
                  h(
                    "div",
                    { class: "row muted small" },
                    h("span", { class: "grow nowrap" }, formatShortDate(m.at)),
                    h("span", { class: "nowrap" }, t("info.balanceAfter", { amount: formatMoney(m.balance_after_fen) })),
                  ),
                ),
              ),
            ),
          ]
        : null,
    ),
    section(
      "info.visit",
      { name: "visits", value: visits },
      visits.next_visit_date ? h("p", { id: "next-visit" }, t("info.nextVisit", { date: formatDate(visits.next_visit_date) })) : null,
      (card.visits || []).length
        ? [tx("h3", "visits.upcoming"), h("ul", { class: "list" }, card.visits.map((v) => h("li", {}, formatDateTime(v.slot_start), " · ", t("visits.people", { n: v.visitors }))))]
        : null,
    ),
  ];
}
