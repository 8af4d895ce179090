// The complaints inbox of the supervisor's prisons (GET /complaints) and one complaint with
// its history (GET /complaints/{id}). A supervisor moves it on with a message to the
// complainant (POST /complaints/{id}/transition {state, message}); the moves offered are
// those the server allows from the current state (storage/complaints.py TRANSITIONS).
// `complaint` events (on the supervisor's own user topic) refresh the list and the detail.
// Closing is a refusal: it picks a published reason code (GET /reasons, kind complaint.close),
// which the complainant reads in its language and may contest. A complaint about a decision
// names it (about: {kind, id}).

import { api } from "/static/lib/api.js";
import { h, clear, replace, show } from "/static/lib/dom.js";
import { t, tOr, errorText, formatDate, formatDateTime, onLocaleChange } from "/static/lib/i18n.js";
import { toast } from "/static/console/staff.js";
import { loadReasons, reasonText } from "/static/lib/reasons.js";

/** A complaint's category in the reader's language (a category not in the catalogs, e.g.
 * typed by hand, is shown as it was filed). */
function category(value) {
  return tOr(`complaintCategory.${value}`, value);
}

export const STATES = ["received", "in_review", "answered", "closed", "escalated"];
const NEXT = {
  received: ["in_review", "answered", "escalated"],
  in_review: ["answered", "escalated"],
  answered: ["closed", "escalated"],
  escalated: ["in_review", "answered"],
  closed: [],
};

export class Complaints {
  constructor({ socket, prisons, meId, onCount, onOpenConversation = () => {} }) {
    this.prisons = prisons; // id -> {name, code}
    this.onOpenConversation = onOpenConversation; // watch it in the overview
    this.meId = meId;
    this.onCount = onCount;
    this.items = [];
    this.open = null; // the complaint shown (detail)
    this.list = document.getElementById("complaints");
    this.detail = document.getElementById("complaint");
    this.stateSelect = document.getElementById("complaint-state");
    this.overdue = document.getElementById("complaint-overdue");
    this.fillStates();
    this.stateSelect.addEventListener("change", () => this.load());
    this.overdue.addEventListener("change", () => this.load());
    socket.on("complaint", (event) => {
      this.load();
      if (this.open && this.open.id === event.id) this.show(event.id);
    });
    onLocaleChange(() => {
      this.fillStates();
      this.render();
      if (this.open) this.renderDetail();
    });
  }

  fillStates() {
    const chosen = this.stateSelect.value;
    replace(
      this.stateSelect, // dom.js's replace: the native append would write an array as text
      h("option", { value: "" }, t("monitor.complaints.anyState")),
      STATES.map((s) => h("option", { value: s }, t(`monitor.cstate.${s}`))),
    );
    this.stateSelect.value = chosen;
  }

  async load() {
    try {
      const got = await api.get("/complaints", {
        state: this.stateSelect.value || null,
        overdue: this.overdue.checked ? "true" : null,
        limit: 200,
      });
      this.items = got.complaints || [];
    } catch (err) {
      clear(this.list).append(h("li", { class: "error" }, errorText(err)));
      return;
    }
    this.render();
  }

  render() {
    clear(this.list);
    for (const c of this.items) {
      this.list.append(
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: ["item", c.overdue ? "overdue" : null],
              data: { complaint: c.id, state: c.state },
              aria: { current: String(this.open !== null && this.open.id === c.id) },
              on: { click: () => this.show(c.id) },
            },
            h("span", { class: "who-line" }, `${c.reference} · ${category(c.category)}`),
            h("span", { class: ["state-badge", `c-${c.state}`] }, t(`monitor.cstate.${c.state}`)),
            h(
              "span",
              { class: "meta" },
              `${c.complainant.name} · ${formatDate(c.created_at)}`,
              c.overdue ? h("span", { class: "overdue-tag" }, ` · ${t("monitor.complaints.overdue")}`) : null,
            ),
          ),
        ),
      );
    }
    show(document.getElementById("complaints-empty"), this.items.length === 0);
    const pending = this.items.filter((c) => c.state === "received" || c.overdue).length;
    this.onCount(pending);
  }

  async show(id) {
    try {
      this.open = await api.get(`/complaints/${id}`);
    } catch (err) {
      clear(this.detail).append(h("p", { class: "error" }, errorText(err)));
      return;
    }
    this.render();
    this.renderDetail();
  }

  renderDetail() {
    const c = this.open;
    const prison = this.prisons[c.prison_id];
    const rows = [
      ["monitor.complaints.reference", c.reference],
      ["monitor.complaints.prison", prison ? prison.name : `#${c.prison_id}`],
      ["monitor.complaints.category", category(c.category)],
      ["monitor.complaints.complainant", `${c.complainant.name} (${t(`role.${c.complainant.role}`)})${c.on_behalf ? ` · ${t("monitor.complaints.onBehalf")}` : ""}`],
      ["monitor.complaints.filed", formatDateTime(c.created_at)],
      // due only while no answer is given (it read as still due after the answer)
      c.state === "answered" || c.state === "closed" ? null : ["monitor.complaints.deadline", formatDateTime(c.deadline)],
      c.conversation_id
        ? [
            "monitor.complaints.conversation",
            h(
              "button",
              {
                type: "button",
                class: "link-button complaint-conv",
                data: { conv: c.conversation_id },
                on: { click: () => this.onOpenConversation(c.conversation_id) },
              },
              t("monitor.conversation", { id: c.conversation_id }),
            ),
          ]
        : null,
      c.about ? ["monitor.complaints.about", t(`contest.about.${c.about.kind}`, { id: c.about.id })] : null,
      c.reason_code ? ["monitor.complaints.closeReason", reasonText("complaint.close", c.reason_code)] : null,
    ].filter(Boolean);
    const history = h(
      "ol",
      { class: "history" },
      (c.history || []).map((e) =>
        h(
          "li",
          {},
          h("span", { class: ["state-badge", `c-${e.state}`] }, t(`monitor.cstate.${e.state}`)),
          " ",
          h("time", { datetime: e.at }, formatDateTime(e.at)),
          ` · ${e.by.name}`,
          e.message ? h("p", { class: "pre" }, e.message) : null,
        ),
      ),
    );
    clear(this.detail).append(
      h(
        "header",
        { class: "complaint-head" },
        h("h2", {}, `${c.reference} · ${category(c.category)}`),
        h("span", { class: ["state-badge", `c-${c.state}`] }, t(`monitor.cstate.${c.state}`)),
        c.overdue ? h("span", { class: "state-badge overdue" }, t("monitor.complaints.overdue")) : null,
        c.escalated ? h("span", { class: "state-badge" }, t("monitor.complaints.escalated")) : null,
      ),
      h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
      h("h3", {}, t("monitor.complaints.body")),
      h("p", { class: "pre complaint-body" }, c.body),
      h("h3", {}, t("monitor.complaints.history")),
      history,
      this.moveForm(c),
    );
  }

  moveForm(c) {
    const next = NEXT[c.state] || [];
    if (!next.length) return h("p", { class: "sub" }, t("monitor.complaints.final"));
    if (c.escalated) return h("p", { class: "sub" }, t("monitor.complaints.bureau")); // the admin's now
    const error = h("p", { class: "error", role: "alert" });
    const select = h("select", { name: "state", id: "move-state" }, next.map((s) => h("option", { value: s }, t(`monitor.move.${s}`))));
    const message = h("textarea", { name: "message", id: "move-message", rows: 4, maxlength: 4000, required: true });
    const reasonCode = h("select", { name: "reason_code", id: "move-reason" });
    const reasonRow = h("div", { class: "move-reason", hidden: true }, h("label", { for: "move-reason" }, t("monitor.complaints.closeReason")), reasonCode);
    const fillReasons = () => {
      const chosen = reasonCode.value;
      loadReasons()
        .then((items) => {
          replace(
            reasonCode,
            h("option", { value: "" }, t("reasons.pick")),
            items.filter((r) => r.kind === "complaint.close").map((r) => h("option", { value: r.code }, reasonText(r.kind, r.code))),
          );
          reasonCode.value = chosen;
        })
        .catch(() => null);
    };
    fillReasons();
    const closing = () => select.value === "closed";
    select.addEventListener("change", () => {
      reasonRow.hidden = !closing();
    });
    reasonRow.hidden = !closing();
    const form = h(
      "form",
      {
        class: "move",
        novalidate: true,
        on: {
          submit: async (event) => {
            event.preventDefault();
            const text = message.value.trim();
            if (!text) {
              error.textContent = t("monitor.complaints.messageNeeded");
              message.focus();
              return;
            }
            if (closing() && !reasonCode.value) {
              error.textContent = t("reasons.pick");
              reasonCode.focus();
              return;
            }
            const button = form.querySelector("button[type=submit]");
            button.disabled = true;
            const move = { state: select.value, message: text };
            if (closing()) move.reason_code = reasonCode.value;
            try {
              this.open = await api.post(`/complaints/${c.id}/transition`, move);
              toast(t("monitor.complaints.moved", { state: t(`monitor.cstate.${this.open.state}`) }));
              this.renderDetail();
              this.load();
            } catch (err) {
              error.textContent = errorText(err);
              button.disabled = false;
            }
          },
        },
      },
      h("h3", {}, t("monitor.complaints.move")),
      h("label", { for: "move-state" }, t("monitor.complaints.to")),
      select,
      reasonRow,
      h("label", { for: "move-message" }, t("monitor.complaints.message")),
      message,
      error,
      h("button", { type: "submit", class: "primary" }, t("monitor.complaints.send")),
    );
    return form;
  }
}
