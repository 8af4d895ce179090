// The inmate's consent, recorded by the officer beside the card: for each verified relative,
// which categories the inmate shares with it (PUT /inmates/{id}/consent {relative_id,
// categories, decided_on, witness, note}), and whether its relatives share one conversation
// (PUT /inmates/{id}/family-case {enabled, decided_on, witness, note}). Both are the inmate's
// decision, dated and witnessed, and audited by the server. Every value is inserted as text.

import { api } from "/static/lib/api.js";
import { h, append, clear, formValues } from "/static/lib/dom.js";
import { t, errorText, formatDate } from "/static/lib/i18n.js";
import { toast } from "/static/console/staff.js";

export const CATEGORIES = ["activity", "work", "health", "term", "money", "visits"];

export class ConsentPanel {
  constructor(editable) {
    this.root = h("section", { class: "consent", id: "consent", aria: { label: t("consent.title") } });
    this.editable = editable;
    this.inmateId = null;
    this.data = null;
  }

  async show(inmateId) {
    this.inmateId = inmateId;
    this.data = null;
    clear(this.root);
    if (inmateId === null || inmateId === undefined) return;
    try {
      const data = await api.get(`/inmates/${inmateId}/consent`);
      if (this.inmateId !== inmateId) return;
      this.data = data;
    } catch (err) {
      if (this.inmateId !== inmateId) return;
      clear(this.root).append(h("p", { class: "error" }, errorText(err)));
      return;
    }
    this.render();
  }

  render() {
    clear(this.root);
    if (!this.data) return;
    const { items, family_case: familyCase } = this.data;
    append(
      this.root,
      h("h3", {}, t("consent.title")),
      h("p", { class: "sub" }, t("consent.hint")),
      items.length ? items.map((item) => this.relativeForm(item)) : h("p", { class: "sub" }, t("consent.noRelatives")),
      this.familyForm(familyCase),
    );
  }

  /** The date, witness and note every decision carries. */
  decisionFields() {
    return [
      field(t("consent.decidedOn"), h("input", { name: "decided_on", type: "date" })),
      field(t("consent.witness"), h("input", { name: "witness", maxlength: 100, placeholder: t("consent.witnessHint") })),
      field(t("consent.note"), h("input", { name: "note", maxlength: 500 })),
    ];
  }

  relativeForm(item) {
    const error = h("p", { class: "error", role: "alert" });
    const boxes = CATEGORIES.map((c) =>
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name: `c-${c}`, value: c, checked: item.shared.includes(c), disabled: !this.editable }),
        h("span", {}, t(`consent.category.${c}`)),
      ),
    );
    const state = item.recorded
      ? t("consent.recorded", { date: formatDate(item.decided_on), witness: item.witness })
      : t("consent.default");
    return h(
      "form",
      {
        class: "consent-relative",
        data: { relative: item.relative_id },
        novalidate: true,
        on: { submit: (event) => this.saveScope(event, item, error) },
      },
      h("p", {}, h("strong", {}, item.name), " · ", item.relationship),
      h("p", { class: "sub" }, state),
      h("fieldset", { class: "categories" }, h("legend", {}, t("consent.shares")), boxes),
      this.editable ? [this.decisionFields(), error, h("button", { type: "submit", class: "primary" }, t("consent.save"))] : null,
    );
  }

  familyForm(familyCase) {
    const on = Boolean(familyCase && familyCase.enabled);
    const error = h("p", { class: "error", role: "alert" });
    return h(
      "form",
      { class: "family-case", novalidate: true, on: { submit: (event) => this.saveCase(event, !on, error) } },
      h("h3", {}, t("consent.familyTitle")),
      h("p", { class: "sub", id: "family-state" }, on ? t("consent.familyOn") : t("consent.familyOff")),
      this.editable
        ? [this.decisionFields(), error, h("button", { type: "submit" }, on ? t("consent.familyEnd") : t("consent.familyStart"))]
        : null,
    );
  }

  decision(form) {
    const v = formValues(form);
    const out = { note: v.note || "" };
    if (v.decided_on) out.decided_on = v.decided_on;
    if (v.witness) out.witness = v.witness;
    return out;
  }

  async saveScope(event, item, error) {
    event.preventDefault();
    const form = event.currentTarget;
    const categories = CATEGORIES.filter((c) => form.querySelector(`input[name="c-${c}"]`).checked);
    await this.submit(form, error, () =>
      api.put(`/inmates/${this.inmateId}/consent`, { relative_id: item.relative_id, categories, ...this.decision(form) }),
    );
  }

  async saveCase(event, enabled, error) {
    event.preventDefault();
    const form = event.currentTarget;
    await this.submit(form, error, () => api.put(`/inmates/${this.inmateId}/family-case`, { enabled, ...this.decision(form) }));
  }

  async submit(form, error, call) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await call();
      toast(t("consent.saved"));
      await this.show(this.inmateId);
    } catch (err) {
      error.textContent = errorText(err);
      button.disabled = false;
    }
  }
}

function field(label, control) {
  return h("label", {}, h("span", {}, label), control);
}
