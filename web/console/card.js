// The inmate card beside the chat (GET /inmates/{id}), with inline updates by the officer
// (PATCH /inmates/{id}, one part at a time) and a "quote into the chat" button per part
// (POST /conversations/{id}/facts {field}: the server builds the fact card, a system message
// labelled with its source and time). Every value is inserted as text.

import { api } from "/static/lib/api.js";
import { h, clear, formValues } from "/static/lib/dom.js";
import {
  t,
  errorText,
  formatDate,
  formatDateTime,
  formatMoney,
  onLocaleChange,
} from "/static/lib/i18n.js";
import { toast, toastError } from "/static/console/staff.js";
import { ConsentPanel } from "/static/console/consent.js";

const HEALTH = ["good", "fair", "poor", "hospitalised"];
const CHANGE_KINDS = ["commutation", "parole", "extension"];
const MOVEMENT_KINDS = ["deposit", "spending"];
const SHOWN_MOVEMENTS = 5;

/** "312.5" or "312.50" yuan -> 31250 fen; null if it is not an amount. */
export function toFen(text) {
  const found = /^\s*(\d{1,8})(?:[.,](\d{1,2}))?\s*$/.exec(text || "");
  if (!found) return null;
  return Number(found[1]) * 100 + Number((found[2] || "0").padEnd(2, "0"));
}

export class InmateCard {
  constructor(root, { editable = true } = {}) {
    this.root = root;
    this.editable = editable;
    this.inmateId = null;
    this.convId = null;
    this.card = null;
    this.editing = null; // the part whose form is open
    this.consent = new ConsentPanel(editable); // the inmate's consent and family case
    onLocaleChange(() => {
      this.render();
      this.consent.render();
    });
  }

  async show(inmateId, convId) {
    this.inmateId = inmateId;
    this.convId = convId;
    this.editing = null;
    this.consent.show(inmateId);
    if (inmateId === null || inmateId === undefined) {
      this.card = null;
      this.render();
      return;
    }
    clear(this.root).append(h("p", { class: "empty" }, t("common.loading")));
    try {
      const card = await api.get(`/inmates/${inmateId}`);
      if (this.inmateId !== inmateId) return; // another conversation was opened meanwhile
      this.card = card;
    } catch (err) {
      if (this.inmateId !== inmateId) return;
      this.card = null;
      clear(this.root).append(h("p", { class: "error" }, errorText(err)));
      return;
    }
    this.render();
  }

  /** An `info` event or an update elsewhere: read the card again if it is the one shown. */
  async reload(inmateId) {
    if (inmateId === this.inmateId && this.editing === null) await this.show(inmateId, this.convId);
  }

  render() {
    clear(this.root);
    if (!this.card) {
      this.root.append(h("p", { class: "empty" }, t("console.card.none")));
      return;
    }
    const { info } = this.card;
    this.root.append(
      h(
        "div",
        { class: "card-head" },
        h("p", { class: "inmate-name" }, h("strong", {}, this.card.name), " · ", t("console.card.number", { number: this.card.number })),
      ),
      this.part("activity", t("console.card.activity"), [
        row(t("console.card.activityText"), info.activity.text || t("common.none")),
      ], info.activity, "activity"),
      this.part("work", t("console.card.work"), [
        row(t("console.card.assignment"), info.work.assignment || t("common.none")),
      ], info.work, "work"),
      this.part("health", t("console.card.health"), [
        row(t("console.card.status"), info.health.status ? t(`console.health.${info.health.status}`) : t("common.none")),
        info.health.note ? row(t("console.card.note"), info.health.note) : null,
      ], info.health, "health"),
      this.termPart(info.term),
      this.moneyPart(info.money),
      this.visitsPart(info.visits),
      this.consent.root,
    );
  }

  /** A section: title, quote and edit buttons, the values, the open form if any. */
  part(name, title, rows, stamped, fact, extra = null) {
    const buttons = [];
    if (this.editable && fact) {
      buttons.push(
        h("button", {
          type: "button",
          class: "fact",
          data: { fact },
          title: t("console.card.quoteHint"),
          on: { click: () => this.quote(fact) },
        }, t("console.card.quote")),
      );
    }
    if (this.editable) {
      buttons.push(
        h("button", {
          type: "button",
          class: "edit",
          data: { part: name },
          aria: { expanded: String(this.editing === name) },
          on: { click: () => this.toggle(name) },
        }, t("console.card.edit")),
      );
    }
    const stamp = stamped && stamped.updated_at
      ? h("p", { class: "sub" }, t("console.card.updatedAt", { at: formatDateTime(stamped.updated_at) }))
      : null;
    return h(
      "section",
      { data: { part: name } },
      h("h3", {}, h("span", {}, title), h("span", { class: "row-actions" }, buttons)),
      h("dl", {}, rows.filter(Boolean).flat()),
      extra,
      stamp,
      this.editing === name ? this.form(name) : null,
    );
  }

  termPart(term) {
    const rows = [
      row(t("console.card.original"), term.original || t("common.none")),
      row(t("console.card.start"), term.start ? formatDate(term.start) : t("common.none")),
      row(t("console.card.release"), term.expected_release ? formatDate(term.expected_release) : t("common.none")),
    ];
    const changes = (term.changes || []).length
      ? h(
          "ul",
          { class: "changes" },
          term.changes.map((c) =>
            h("li", {}, `${formatDate(c.decided_on)} ${t(`console.change.${c.kind}`)} · ${c.decision} → ${formatDate(c.new_release)}`),
          ),
        )
      : null;
    return this.part("term", t("console.card.term"), rows, term, "term", changes);
  }

  moneyPart(money) {
    const rows = [row(t("console.card.balance"), h("span", { class: "money" }, formatMoney(money.balance_fen)))];
    const recent = (money.movements || []).slice(-SHOWN_MOVEMENTS).reverse();
    const list = recent.length
      ? h(
          "ul",
          { class: "movements" },
          recent.map((m) =>
            h(
              "li",
              {},
              `${formatDate(m.at)} ${t(`console.movement.${m.kind}`)} `,
              h("span", { class: ["money", m.kind === "spending" ? "out" : "in"] }, `${m.kind === "spending" ? "−" : "+"}${formatMoney(m.amount_fen)}`),
              m.note ? ` · ${m.note}` : "",
            ),
          ),
        )
      : null;
    return this.part("money", t("console.card.money"), rows, money, "balance", list);
  }

  visitsPart(visits) {
    const rows = [
      row(t("console.card.nextVisit"), visits.next_visit_date ? formatDate(visits.next_visit_date) : t("console.card.anyDay")),
    ];
    const upcoming = (this.card.visits || []).length
      ? h(
          "ul",
          { class: "upcoming" },
          this.card.visits.map((v) => h("li", {}, t("console.card.visitAt", { at: formatDateTime(v.slot_start), n: v.visitors }))),
        )
      : null;
    return this.part("visits", t("console.card.visits"), rows, visits, "visits", upcoming);
  }

  toggle(name) {
    this.editing = this.editing === name ? null : name;
    this.render();
    const form = this.root.querySelector(`section[data-part="${name}"] form`);
    if (form) {
      const first = form.querySelector("input, select, textarea");
      if (first) first.focus();
    }
  }

  form(name) {
    const info = this.card.info;
    const fields = {
      activity: () => [field(t("console.card.activityText"), h("textarea", { name: "activity", rows: 3, maxlength: 500 }, info.activity.text))],
      work: () => [field(t("console.card.assignment"), h("input", { name: "work", maxlength: 200, value: info.work.assignment }))],
      health: () => [
        field(t("console.card.status"), select("status", HEALTH, (v) => t(`console.health.${v}`), info.health.status || "good")),
        field(t("console.card.note"), h("input", { name: "note", maxlength: 500, value: info.health.note })),
      ],
      term: () => [
        h("p", { class: "sub" }, t("console.card.termRecord")),
        field(t("console.card.original"), h("input", { name: "original", maxlength: 200, value: info.term.original })),
        field(t("console.card.start"), h("input", { name: "start", type: "date", value: info.term.start || "" })),
        h("p", { class: "sub" }, t("console.card.termChange")),
        field(t("console.card.decidedOn"), h("input", { name: "decided_on", type: "date" })),
        field(t("console.card.changeKind"), select("kind", CHANGE_KINDS, (v) => t(`console.change.${v}`), "commutation")),
        field(t("console.card.decision"), h("input", { name: "decision", maxlength: 200 })),
        field(t("console.card.newRelease"), h("input", { name: "new_release", type: "date" })),
      ],
      money: () => [
        field(t("console.card.movementKind"), select("kind", MOVEMENT_KINDS, (v) => t(`console.movement.${v}`), "deposit")),
        field(t("console.card.amount"), h("input", { name: "amount", inputmode: "decimal", required: true, placeholder: "0.00" })),
        field(t("console.card.note"), h("input", { name: "note", maxlength: 200 })),
      ],
      visits: () => [field(t("console.card.nextVisit"), h("input", { name: "next_visit_date", type: "date", value: info.visits.next_visit_date || "" }))],
    };
    const error = h("p", { class: "error", role: "alert" });
    const form = h(
      "form",
      { novalidate: true, on: { submit: (event) => this.save(event, name, error) } },
      fields[name](),
      error,
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "submit", class: "primary" }, t("common.save")),
        h("button", { type: "button", on: { click: () => this.toggle(name) } }, t("common.cancel")),
      ),
    );
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.toggle(name);
    });
    return form;
  }

  /** The PATCH body for one part's form, or a message key when the input is not usable. */
  patchOf(name, v) {
    switch (name) {
      case "activity":
        return { activity: v.activity };
      case "work":
        return { work: v.work };
      case "health":
        return { health: { status: v.status, note: v.note } };
      case "term": {
        const patch = {};
        const record = {};
        if (v.original !== (this.card.info.term.original || "")) record.original = v.original;
        if (v.start && v.start !== this.card.info.term.start) record.start = v.start;
        if (Object.keys(record).length) patch.term = record;
        if (v.decided_on || v.decision || v.new_release) {
          if (!v.decided_on || !v.decision || !v.new_release) return "console.card.changeIncomplete";
          patch.term_change = { decided_on: v.decided_on, kind: v.kind, decision: v.decision, new_release: v.new_release };
        }
        return Object.keys(patch).length ? patch : "console.card.nothingChanged";
      }
      case "money": {
        const fen = toFen(v.amount);
        if (!fen) return "console.card.badAmount";
        return { movement: { kind: v.kind, amount_fen: fen, note: v.note } };
      }
      case "visits":
        return v.next_visit_date ? { next_visit_date: v.next_visit_date } : "console.card.nothingChanged";
      default:
        return "console.card.nothingChanged";
    }
  }

  async save(event, name, error) {
    event.preventDefault();
    const form = event.currentTarget;
    const patch = this.patchOf(name, formValues(form));
    if (typeof patch === "string") {
      error.textContent = t(patch);
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      this.card = await api.patch(`/inmates/${this.inmateId}`, patch);
      this.editing = null;
      this.render();
      toast(t("common.saved"));
      const edit = this.root.querySelector(`section[data-part="${name}"] button.edit`);
      if (edit) edit.focus();
    } catch (err) {
      error.textContent = errorText(err);
      button.disabled = false;
    }
  }

  async quote(fact) {
    if (this.convId === null) return;
    try {
      await api.post(`/conversations/${this.convId}/facts`, { field: fact });
      toast(t("console.card.quoted"));
    } catch (err) {
      toastError(err);
    }
  }
}

function row(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function field(label, control) {
  return h("label", {}, h("span", {}, label), control);
}

function select(name, values, label, current) {
  const el = h("select", { name }, values.map((v) => h("option", { value: v }, label(v))));
  el.value = current;
  return el;
}
