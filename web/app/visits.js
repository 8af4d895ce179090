// Visits of one inmate: the prison's rules, the inmate's eligibility, my requests and their
// state (live `visit` events), and a request form. Times are the bureau's local time.

import { refusal } from "/static/app/contest.js";
import { loadReasons } from "/static/lib/reasons.js";
import { api } from "/static/lib/api.js";
import { h, replace } from "/static/lib/dom.js";
import { errorText, formatDate, formatDateTime, formatList, formatWeekday, t } from "/static/lib/i18n.js";
import { field, notice, onSubmit, tx } from "/static/lib/ui.js";
import { badge, inmateHead, inmateTabs, view } from "/static/app/view.js";

const ZONE = "Asia/Shanghai";

/** "2025-03-04T09:30" in the bureau's zone -> RFC 3339 with that zone's offset. */
export function localToRfc3339(local, zone = ZONE) {
  const guess = new Date(`${local}:00Z`);
  const name = new Intl.DateTimeFormat("en", { timeZone: zone, timeZoneName: "longOffset" })
    .formatToParts(guess)
    .find((p) => p.type === "timeZoneName").value; // "GMT+08:00" (or "GMT" for UTC)
  const offset = name === "GMT" ? "+00:00" : name.slice(3);
  return `${local}:00${offset}`;
}

const DAYS_AHEAD = 28; // how far ahead the form offers days
const STEP_MIN = 30; // start times every half hour inside the visit hours
const OPEN_HOURS = [{ start: "08:00", end: "18:00" }]; // a prison that published no hours

/** Today in the bureau's zone, "YYYY-MM-DD". */
function today(zone = ZONE) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
}

function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

function isoWeekday(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d)).getUTCDay() || 7;
}

/** The days the rules allow from tomorrow on (and from the card's next allowed date), for
 * the next four weeks: a free date-time picker let a relative ask for any day and hour and
 * be refused (days, hours, visitors) again and again before one went through. */
export function allowedDays(rules, nextVisitDate = null, from = today()) {
  const days = rules && rules.days && rules.days.length ? new Set(rules.days) : null;
  const out = [];
  for (let n = 1; n <= DAYS_AHEAD; n++) {
    const day = addDays(from, n);
    if (days && !days.has(isoWeekday(day))) continue;
    if (nextVisitDate && day < nextVisitDate) continue;
    out.push(day);
  }
  return out;
}

/** Start times inside the visit hours (start <= t < end), every half hour. */
export function allowedTimes(rules) {
  const windows = rules && rules.hours && rules.hours.length ? rules.hours : OPEN_HOURS;
  const minutes = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
  const out = [];
  for (const w of windows) {
    for (let m = minutes(w.start); m < minutes(w.end); m += STEP_MIN) {
      out.push(`${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`);
    }
  }
  return [...new Set(out)].sort();
}

export function rulesList(rules) {
  if (!rules) return null;
  const items = [];
  if (rules.days && rules.days.length) items.push(t("visits.days", { days: formatList(rules.days.map(formatWeekday)) }));
  if (rules.hours && rules.hours.length) items.push(t("visits.hours", { hours: formatList(rules.hours.map((x) => `${x.start}–${x.end}`)) }));
  if (rules.min_days_between) items.push(t("visits.minDays", { n: rules.min_days_between }));
  if (rules.max_visitors) items.push(t("visits.maxVisitors", { n: rules.max_visitors }));
  if (rules.allowed_items && rules.allowed_items.length) items.push(t("visits.allowed", { items: formatList(rules.allowed_items) }));
  if (rules.forbidden_items && rules.forbidden_items.length) items.push(t("visits.forbidden", { items: formatList(rules.forbidden_items) }));
  return h(
    "div",
    { class: "rules" },
    h("ul", {}, items.map((text) => h("li", {}, text))),
    rules.notes ? h("p", { class: "pre" }, rules.notes) : null,
  );
}

export function visitsView(ctx, inmateId) {
  const rulesBox = h("section", { class: "card", id: "visit-rules" });
  const list = h("ul", { class: "list", id: "visits" });
  const out = notice();
  const listError = notice();
  let visits = [];
  const el = h("section", { class: "view" }, inmateHead(ctx, inmateId), inmateTabs(inmateId, "/visits"));
  if (!ctx.verifiedInmates.includes(inmateId)) {
    el.append(h("p", { class: "notice notice-error" }, errorText({ code: "not_found" })));
    return view(el);
  }

  const renderRules = () => {
    const card = ctx.inmates.get(inmateId);
    const next = card && card.info && card.info.visits ? card.info.visits.next_visit_date : null;
    const today = new Date().toISOString().slice(0, 10);
    replace(rulesBox, 
      tx("h2", "visits.rules"),
      card ? rulesList(card.visit_rules) : tx("p", "common.loading", {}, { class: "muted" }),
      next
        ? h("p", { class: next > today ? "notice notice-warn" : "notice notice-ok", id: "eligibility" }, next > today ? t("info.nextVisit", { date: formatDate(next) }) : t("info.eligible"))
        : card
          ? h("p", { class: "notice notice-ok", id: "eligibility" }, t("info.eligible"))
          : null,
    );
  };
  // A request not declined, not cancelled and not begun can be withdrawn: one button, then a
  // second one to confirm (an approved slot given up by a slip would be hard to get back).
  const cancellable = (v) => (v.state === "pending" || v.state === "approved") && Date.parse(v.slot_start) > Date.now();
  const cancelBox = (v) => {
    const result = notice();
    const box = h("div", { class: "actions" });
    const ask = () =>
      replace(box, tx("button", "visits.cancel", {}, { type: "button", data: { action: "cancel" }, on: { click: confirm } }));
    const confirm = () =>
      replace(
        box,
        tx("span", "visits.cancelSure"),
        tx("button", "visits.cancelYes", {}, { type: "button", class: "danger", data: { action: "cancel-yes" }, on: { click: cancel } }),
        tx("button", "visits.cancelNo", {}, { type: "button", data: { action: "cancel-no" }, on: { click: ask } }),
      );
    const cancel = async (event) => {
      event.currentTarget.disabled = true;
      try {
        await api.post(`/visits/${v.id}/cancel`, {});
        await load();
      } catch (err) {
        result.error(err);
        ask();
      }
    };
    ask();
    return [box, result];
  };
  const renderList = () => {
    replace(list, 
      ...(visits.length
        ? visits.map((v) =>
            h(
              "li",
              { data: { visit: v.id, state: v.state } },
              h("div", { class: "row" }, h("strong", { class: "grow" }, formatDateTime(v.slot_start)), badge("visitState", v.state)),
              h("p", { class: "muted" }, t("visits.people", { n: v.visitors }), v.visitor_names && v.visitor_names.length ? ` · ${formatList(v.visitor_names)}` : ""),
              v.state === "declined"
                ? refusal("visit", v)
                : v.reason
                  ? h("p", {}, t("visits.reason", { reason: v.reason }))
                  : null,
              cancellable(v) ? cancelBox(v) : null,
            ),
          )
        : [tx("li", "visits.none", {}, { class: "muted empty" })]),
    );
  };
  const load = async () => {
    try {
      const reply = await api.get("/visits", { inmate: inmateId });
      visits = reply.visits || [];
      listError.clear();
    } catch (err) {
      listError.error(err);
    }
    await loadReasons().catch(() => null);
    renderList();
  };

  // Only what the rules allow is offered: the prison's days and hours, at most its number of
  // visitors, from the card's next allowed date.
  const daySelect = h("select", { name: "day", required: true });
  const timeSelect = h("select", { name: "time", required: true });
  const visitorsInput = h("input", { name: "visitors", type: "number", required: true, min: 1, max: 20, value: 1 });
  const noDay = tx("p", "visits.noDay", {}, { class: "notice notice-warn", id: "visit-no-day", hidden: true });
  const fillSlots = () => {
    const card = ctx.inmates.get(inmateId);
    const rules = card ? card.visit_rules : null;
    const next = card && card.info && card.info.visits ? card.info.visits.next_visit_date : null;
    const [day, time] = [daySelect.value, timeSelect.value];
    const days = card ? allowedDays(rules, next) : [];
    replace(
      daySelect,
      h("option", { value: "" }, t(card ? "visits.chooseDay" : "common.loading")),
      days.map((d) => h("option", { value: d }, `${formatDate(d)} ${formatWeekday(isoWeekday(d))}`)),
    );
    replace(
      timeSelect,
      h("option", { value: "" }, t("visits.chooseTime")),
      allowedTimes(rules).map((x) => h("option", { value: x }, x)),
    );
    daySelect.value = days.includes(day) ? day : "";
    timeSelect.value = time;
    const max = rules && rules.max_visitors ? rules.max_visitors : 20;
    visitorsInput.max = String(max);
    if (Number(visitorsInput.value) > max) visitorsInput.value = String(max);
    if (!visitorsInput.value) visitorsInput.value = "1"; // after a reset
    noDay.hidden = !card || days.length > 0;
  };
  const form = h(
    "form",
    { class: "card form", id: "visit-form" },
    tx("h2", "visits.request"),
    field("visits.day", daySelect),
    field("visits.time", timeSelect),
    noDay,
    field("visits.visitors", visitorsInput),
    field("visits.names", h("input", { name: "visitor_names", type: "text", maxlength: 600 })),
    out,
    h("div", { class: "actions" }, tx("button", "visits.request", {}, { type: "submit", class: "primary" })),
  );
  onSubmit(form, out, async (values, f) => {
    const names = (values.visitor_names || "").split(/[,，、]/).map((n) => n.trim()).filter(Boolean);
    const request = {
      inmate_id: inmateId,
      slot_start: localToRfc3339(`${values.day}T${values.time}`),
      visitors: names.length || Number(values.visitors),
    };
    if (names.length) request.visitor_names = names;
    await api.post("/visits", request);
    f.reset();
    fillSlots();
    out.show(t("visits.requested"), "ok");
    await load();
  });

  el.append(rulesBox, form, tx("h2", "visits.mine"), listError, list);
  renderRules();
  fillSlots();
  renderList();
  load();
  if (!ctx.inmates.has(inmateId)) ctx.loadInmate(inmateId).catch(() => null);
  const offs = [
    ctx.on("inmate", (card) => {
      if (card.id !== inmateId) return;
      renderRules();
      fillSlots();
    }),
    ctx.on("visit", (ev) => ev.inmate === inmateId && load()),
  ];
  return view(el, {
    stop: () => offs.forEach((off) => off()),
    rerender: () => {
      renderRules();
      fillSlots();
      renderList();
    },
  });
}
