// The audit trail of the supervisor's prison (GET /audit), newest first, with filters
// (action, person, object type and id, time range) and "older entries" paging by id. Entries
// are read-only: there is nothing on this page (or in the API) that changes one. Everything is
// said in the reader's language: actions by their label, the person by name (GET
// /audit/actors), before and after as labelled values (money as money, times in local time,
// states by their name), never raw keys, ISO timestamps or a JSON blob. Text, never HTML.

import { api } from "/static/lib/api.js";
import { h, clear, replace, show, formValues } from "/static/lib/dom.js";
import {
  t,
  tOr,
  errorText,
  fieldName,
  formatDate,
  formatDateTime,
  formatMoney,
  hasKey,
  onLocaleChange,
} from "/static/lib/i18n.js";

export const ACTIONS = [
  "conversation.*",
  "conversation.opened",
  "conversation.claimed",
  "conversation.transferred",
  "conversation.released",
  "conversation.resolved",
  "conversation.rated",
  "inmate.updated",
  "link.*",
  "link.verified",
  "link.rejected",
  "link.revoked",
  "link.missed",
  "visit.*",
  "visit.approved",
  "visit.declined",
  "visit.cancelled",
  "complaint.*",
  "complaint.filed",
  "complaint.in_review",
  "complaint.answered",
  "complaint.escalated",
  "complaint.closed",
  "duty.changed",
  "canned.created",
  "canned.updated",
  "canned.deleted",
  "prison.visit_rules_set",
  "announcement.posted",
  "supervisor.profile",
  "flag.reviewed",
  "flags.viewed",
];

/** A local "YYYY-MM-DDTHH:MM" (datetime-local, the browser's zone) -> RFC 3339 with offset. */
export function toMoment(local) {
  if (!local) return null;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

function objectLabel(object) {
  return hasKey(`monitor.object.${object}`) ? t(`monitor.object.${object}`) : object;
}

/** An action in words; one without a label of its own: its object and its verb. */
export function actionLabel(action) {
  const key = `monitor.action.${action}`;
  if (hasKey(key)) return t(key);
  const [object, verb] = action.split(".");
  return `${objectLabel(object)} · ${(verb || "").replace(/_/g, " ")}`;
}

// the catalogs whose names a `state` takes, by the entry's object type
const STATE_NAMES = {
  conversation: "convState",
  visit: "visitState",
  family_link: "linkState",
  complaint: "complaintState",
};
const MOMENT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

const names = new Map(); // user id -> name, of the people in this trail (GET /audit/actors)

function label(key) {
  if (hasKey(`monitor.field.${key}`)) return t(`monitor.field.${key}`);
  const named = fieldName(key);
  return named !== key ? named : key.replace(/_/g, " ");
}

/** One value as a reader would write it. */
export function readable(key, value, objectType) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return t(value ? "common.yes" : "common.no");
  if (typeof value === "number" && key.endsWith("_fen")) return formatMoney(value);
  if (typeof value === "number" && (key === "officer_id" || key.endsWith("_by"))) return names.get(value) || `#${value}`;
  if (typeof value === "string") {
    if (key === "state" && STATE_NAMES[objectType]) return tOr(`${STATE_NAMES[objectType]}.${value}`, value);
    if (key === "via" || key === "kind" || key === "status") return tOr(`monitor.value.${value}`, value);
    if (MOMENT.test(value)) return formatDateTime(value);
    if (DAY.test(value)) return formatDate(value);
    return value;
  }
  if (Array.isArray(value)) return value.length ? value.map((v) => readable(key, v, objectType)).join(", ") : "—";
  if (typeof value === "object") return describe(value, objectType).join("; ");
  return String(value);
}

/** Before or after: "label: value" lines. */
export function describe(value, objectType) {
  if (value === null || value === undefined) return [];
  return Object.entries(value).map(([k, v]) => `${label(k)}: ${readable(k, v, objectType)}`);
}

function values(value, objectType) {
  const lines = describe(value, objectType);
  return lines.length ? lines.map((line) => h("div", {}, line)) : "—";
}

export class Audit {
  constructor({ prison }) {
    this.prison = prison;
    this.form = document.getElementById("audit-form");
    this.table = document.getElementById("audit-table");
    this.more = document.getElementById("audit-more");
    this.error = document.getElementById("audit-error");
    this.entries = [];
    this.next = null;
    this.filters = {};
    this.actions = document.getElementById("audit-actions");
    this.actor = document.getElementById("audit-actor");
    this.people = [];
    this.fillActions();
    this.fillActors();
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search();
    });
    this.form.addEventListener("reset", () => setTimeout(() => this.search(), 0));
    this.more.addEventListener("click", () => this.load(true));
    onLocaleChange(() => {
      this.fillActions();
      this.fillActors();
      this.render();
    });
  }

  fillActions() {
    const chosen = this.actions.value;
    replace(
      this.actions,
      h("option", { value: "" }, t("monitor.audit.anyAction")),
      ACTIONS.map((a) =>
        h("option", { value: a }, a.endsWith(".*") ? t("monitor.audit.allOf", { what: objectLabel(a.slice(0, -2)) }) : actionLabel(a)),
      ),
    );
    this.actions.value = chosen;
  }

  /** The people of this trail, by name (GET /audit/actors): not a user id to type. */
  async loadActors() {
    try {
      this.people = (await api.get("/audit/actors", { prison: this.prison })).actors || [];
      for (const p of this.people) names.set(p.id, p.name);
    } catch (err) {
      this.error.textContent = errorText(err);
    }
    this.fillActors();
    this.render(); // the names of the officers the entries mention
  }

  fillActors() {
    const chosen = this.actor.value;
    replace(
      this.actor,
      h("option", { value: "" }, t("monitor.audit.anyone")),
      this.people.map((p) => h("option", { value: String(p.id) }, `${p.name} (${t(`role.${p.role}`)})`)),
    );
    this.actor.value = this.people.some((p) => String(p.id) === chosen) ? chosen : "";
  }

  setPrison(prison) {
    this.prison = prison;
    this.actor.value = "";
    this.search();
  }

  search() {
    this.loadActors();
    const v = formValues(this.form);
    this.filters = {
      action: v.action || null,
      actor: v.actor || null,
      object_type: v.object_type || null,
      object_id: v.object_id || null,
      since: toMoment(v.since),
      until: toMoment(v.until),
    };
    this.exportLinks();
    this.load(false);
  }

  /** The chosen period (the last 30 days when none is) for a complaint file: CSV or print. */
  exportLinks() {
    const until = this.filters.until || new Date(Date.now() + 60_000).toISOString();
    const since = this.filters.since || new Date(Date.parse(until) - 30 * 86400_000).toISOString();
    const params = new URLSearchParams({ since, until });
    if (this.prison) params.set("prison", String(this.prison));
    for (const [id, format] of [["audit-export-csv", "csv"], ["audit-export-print", "html"]]) {
      params.set("format", format);
      document.getElementById(id).href = `/api/v1/audit/export?${params}`;
    }
  }

  async load(more) {
    this.error.textContent = "";
    try {
      const page = await api.get("/audit", {
        ...this.filters,
        prison: this.prison,
        before_id: more ? this.next : null,
        limit: 50,
      });
      this.entries = more ? [...this.entries, ...page.entries] : page.entries;
      this.next = page.next_before_id;
    } catch (err) {
      this.error.textContent = errorText(err);
      if (!more) this.entries = [];
      this.next = null;
    }
    this.render();
  }

  render() {
    clear(this.table);
    this.table.append(
      h("caption", { class: "visually-hidden" }, t("monitor.audit.caption")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["monitor.audit.at", "monitor.audit.who", "monitor.audit.action", "monitor.audit.object", "monitor.audit.before", "monitor.audit.after"].map((k) =>
            h("th", { scope: "col" }, t(k)),
          ),
        ),
      ),
    );
    const body = h("tbody");
    for (const e of this.entries) {
      const who = e.actor ? `${e.actor.name} (${t(`role.${e.actor.role}`)})` : t("monitor.audit.system");
      const object = `${hasKey(`monitor.object.${e.object_type}`) ? t(`monitor.object.${e.object_type}`) : e.object_type}${e.object_id ? ` #${e.object_id}` : ""}`;
      body.append(
        h(
          "tr",
          { data: { action: e.action, id: e.id } },
          h("td", {}, h("time", { datetime: e.at }, formatDateTime(e.at))),
          h("td", {}, who),
          h("td", {}, h("span", { class: "action", title: e.action }, actionLabel(e.action))),
          h("td", {}, object),
          h("td", { class: "values" }, values(e.before, e.object_type)),
          h("td", { class: "values" }, values(e.after, e.object_type)),
        ),
      );
    }
    if (!this.entries.length) {
      body.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, t("monitor.audit.empty"))));
    }
    this.table.append(body);
    show(this.more, this.next !== null);
  }
}
