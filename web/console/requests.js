// The two request lists an officer decides: family links waiting to be verified
// (GET /links?state=pending, POST /links/{id}/verify|reject) and visit requests waiting for
// approval (GET /visits?state=pending, POST /visits/{id}/approve|decline). A rejection or a
// decline picks a published reason code (GET /reasons; web/lib/reasons.js) and may add words,
// which "other" requires; the relative is told live by the server, and may contest it. A link
// request's evidence files (only the deciding officers are given them) show beside it,
// thumbnails that open.

import { api } from "/static/lib/api.js";
import { h, clear, show } from "/static/lib/dom.js";
import { t, tOr, errorText, formatDateTime, formatList, onLocaleChange } from "/static/lib/i18n.js";
import { toast } from "/static/console/staff.js";
import { attachmentList } from "/static/lib/attachments.js";
import { reasonPicker } from "/static/lib/reasons.js";

class Requests {
  constructor({ list, empty, counter }) {
    this.list = list;
    this.empty = empty;
    this.counter = counter;
    this.items = [];
    onLocaleChange(() => this.render());
  }

  async load() {
    try {
      this.items = await this.fetch();
    } catch (err) {
      clear(this.list).append(h("li", { class: "error" }, errorText(err)));
      return;
    }
    this.render();
  }

  render() {
    clear(this.list);
    for (const item of this.items) this.list.append(this.card(item));
    show(this.empty, this.items.length === 0);
    this.counter.textContent = this.items.length ? String(this.items.length) : "";
  }

  /** A decision row: the reason picker (codes of `reasonKind`) and the buttons;
   * `decide(action, reason)` does the call with {reason_code, reason?} for a refusal. */
  actions(item, choices, reasonKind) {
    const error = h("p", { class: "error", role: "alert" });
    const picker = reasonPicker(reasonKind);
    const buttons = choices.map(({ action, label, primary, needsReason }) =>
      h(
        "button",
        {
          type: "button",
          class: primary ? "primary" : "danger",
          data: { action },
          on: {
            click: async (event) => {
              const button = event.currentTarget; // null once the handler has awaited
              const reason = needsReason ? picker.value() : null;
              if (needsReason && !reason) {
                error.textContent = t("console.requests.reasonNeeded");
                return;
              }
              button.disabled = true;
              try {
                await this.decide(item, action, reason);
                toast(t(`console.requests.done.${action}`));
                this.items = this.items.filter((other) => other.id !== item.id);
                this.render();
              } catch (err) {
                error.textContent = errorText(err);
                button.disabled = false;
              }
            },
          },
        },
        t(label),
      ),
    );
    return [h("div", { class: "actions" }, picker.element, buttons), error];
  }
}

export class LinkRequests extends Requests {
  async fetch() {
    const got = await api.get("/links", { state: "pending" });
    return got.links || [];
  }

  decide(link, action, reason) {
    return api.post(`/links/${link.id}/${action}`, action === "reject" ? reason : {});
  }

  card(link) {
    const relative = link.relative || {};
    const rows = [
      ["console.links.relative", relative.name],
      ["console.links.phone", relative.phone],
      ["console.links.idLast4", relative.id_number_last4],
      ["console.links.inmateNumber", link.inmate_number],
      ["console.links.relationship", link.relationship ? tOr(`relationship.${link.relationship}`, link.relationship) : ""],
      ["console.links.evidence", link.evidence],
      ["console.links.requested", formatDateTime(link.created_at)],
    ];
    return h(
      "li",
      { data: { link: link.id } },
      h("h3", {}, t("console.links.heading", { name: relative.name || "", number: link.inmate_number })),
      link.matched === false ? h("p", { class: "unmatched" }, t("console.links.unmatched")) : null,
      relative.id_conflict ? h("p", { class: "unmatched id-conflict" }, t("console.links.idConflict")) : null,
      h("dl", {}, rows.filter(([, v]) => v).map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
      link.attachments && link.attachments.length
        ? h("div", { class: "evidence" }, h("h4", {}, t("console.links.files")), attachmentList(link.attachments))
        : null,
      this.actions(
        link,
        [
          { action: "verify", label: "console.links.verify", primary: true },
          { action: "reject", label: "console.links.reject", needsReason: true },
        ],
        "link.reject",
      ),
    );
  }
}

export class VisitRequests extends Requests {
  constructor(options) {
    super(options);
    this.inmateNames = new Map();
  }

  async fetch() {
    const got = await api.get("/visits", { state: "pending" });
    return got.visits || [];
  }

  decide(visit, action, reason) {
    return api.post(`/visits/${visit.id}/${action}`, action === "decline" ? reason : {});
  }

  card(visit) {
    const rows = [
      ["console.visits.relative", visit.relative ? visit.relative.name : ""],
      ["console.visits.inmate", this.inmateNames.get(visit.inmate_id) || `#${visit.inmate_id}`],
      ["console.visits.slot", formatDateTime(visit.slot_start)],
      ["console.visits.visitors", String(visit.visitors)],
      ["console.visits.names", formatList(visit.visitor_names || [])],
    ];
    return h(
      "li",
      { data: { visit: visit.id } },
      h("h3", {}, t("console.visits.heading", { at: formatDateTime(visit.slot_start) })),
      h("dl", {}, rows.filter(([, v]) => v).map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
      this.actions(
        visit,
        [
          { action: "approve", label: "console.visits.approve", primary: true },
          { action: "decline", label: "console.visits.decline", needsReason: true },
        ],
        "visit.decline",
      ),
      visit.relative ? resetAtTheDesk(visit.relative) : null,
    );
  }
}

/** The staff-assisted reset at the visit desk: a relative who forgot its password and has no
 * phone at hand, its papers checked in person, gets a new one set by the officer (POST
 * /admin/users/{id}/password: a relative linked with the officer's prison; every session of
 * it ends; audited). Folded away until asked for. */
function resetAtTheDesk(relative) {
  const input = h("input", { name: "new_password", type: "password", autocomplete: "new-password", minlength: 10, required: true, aria: { label: t("console.visits.newPassword") } });
  const form = h(
    "form",
    { class: "desk-reset" },
    input,
    h("button", { type: "submit" }, t("console.visits.setPassword")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api.post(`/admin/users/${relative.id}/password`, { new_password: input.value });
      form.reset();
      toast(t("console.visits.passwordSet", { name: relative.name }));
    } catch (err) {
      toast(errorText(err), { bad: true });
    } finally {
      button.disabled = false;
    }
  });
  return h(
    "details",
    { class: "desk-reset-box", data: { relative: relative.id } },
    h("summary", {}, t("console.visits.resetPassword", { name: relative.name })),
    h("p", { class: "hint" }, t("console.visits.resetWhy")),
    form,
  );
}
