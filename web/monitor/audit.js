// The audit trail of the supervisor's prison (GET /audit), newest first, with filters
// (action, actor, object type and id, time range) and "older entries" paging by id. Entries
// are read-only: there is nothing on this page (or in the API) that changes one. Before and
// after are shown as compact JSON text (never as HTML).

import { api } from "/static/lib/api.js";
import { h, clear, show, formValues } from "/static/lib/dom.js";
import { t, errorText, formatDateTime, hasKey, onLocaleChange } from "/static/lib/i18n.js";

export const ACTIONS = [
  "conversation.opened",
  "conversation.claimed",
  "conversation.transferred",
  "conversation.resolved",
  "conversation.rated",
  "conversation.*",
  "inmate.updated",
  "link.verified",
  "link.rejected",
  "link.revoked",
  "duty.changed",
  "canned.created",
  "canned.updated",
  "canned.deleted",
  "prison.visit_rules_set",
  "complaint.*",
];

/** A local "YYYY-MM-DDTHH:MM" (datetime-local, the browser's zone) -> RFC 3339 with offset. */
export function toMoment(local) {
  if (!local) return null;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

function actionLabel(action) {
  const key = `monitor.action.${action}`;
  return hasKey(key) ? t(key) : action;
}

function compact(value) {
  if (value === null || value === undefined) return "—";
  return Object.entries(value)
    .map(([k, v]) => `${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`)
    .join(", ");
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
    const list = document.getElementById("audit-actions");
    for (const action of ACTIONS) list.append(h("option", { value: action }));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search();
    });
    this.form.addEventListener("reset", () => setTimeout(() => this.search(), 0));
    this.more.addEventListener("click", () => this.load(true));
    onLocaleChange(() => this.render());
  }

  setPrison(prison) {
    this.prison = prison;
    this.search();
  }

  search() {
    const v = formValues(this.form);
    this.filters = {
      action: v.action || null,
      actor: v.actor || null,
      object_type: v.object_type || null,
      object_id: v.object_id || null,
      since: toMoment(v.since),
      until: toMoment(v.until),
    };
    this.load(false);
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
      const who = e.actor ? `${e.actor.name} (${t(`role.${e.actor.role}`)}, #${e.actor.id})` : t("monitor.audit.system");
      const object = `${hasKey(`monitor.object.${e.object_type}`) ? t(`monitor.object.${e.object_type}`) : e.object_type}${e.object_id ? ` #${e.object_id}` : ""}`;
      body.append(
        h(
          "tr",
          { data: { action: e.action, id: e.id } },
          h("td", {}, h("time", { datetime: e.at }, formatDateTime(e.at))),
          h("td", {}, who),
          h("td", {}, h("span", { class: "action", title: e.action }, actionLabel(e.action))),
          h("td", {}, object),
          h("td", { class: "json" }, compact(e.before)),
          h("td", { class: "json" }, compact(e.after)),
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
