// The bureau's complaints (/admin, tab "Escalated complaints"): every complaint escalated to
// the bureau (GET /complaints?state=escalated), by a prison's supervisors or by the
// complainant itself after an answer (once: POST /complaints/{id}/escalate), each with its
// history; the admin answers it (POST /complaints/{id}/answer, audited), and the complainant
// reads the answer in its app. An answered one leaves the list.

import { api } from "/static/lib/api.js";
import { $, h, replace } from "/static/lib/dom.js";
import { errorText, formatDateTime, t, tOr } from "/static/lib/i18n.js";
import { toast } from "/static/console/staff.js";

function item(c, prisonName, reload) {
  const history = h(
    "ol",
    { class: "history" },
    (c.history || []).map((e) =>
      h(
        "li",
        {},
        h("strong", {}, tOr(`complaintState.${e.state}`, e.state)),
        ` · ${formatDateTime(e.at)} · ${e.by.name}`,
        e.message ? h("p", { class: "pre" }, e.message) : null,
      ),
    ),
  );
  const message = h("textarea", { name: "message", rows: 3, maxlength: 4000, required: true, aria: { label: t("admin.escalated.answer") } });
  const error = h("p", { class: "error", role: "alert" });
  const send = h("button", { type: "submit", class: "primary" }, t("admin.escalated.send"));
  const form = h("form", { class: "escalated-answer" }, message, error, send);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!message.value.trim()) {
      message.focus();
      return;
    }
    send.disabled = true;
    try {
      await api.post(`/complaints/${c.id}/answer`, { message: message.value });
      toast(t("admin.escalated.answered", { reference: c.reference }));
      await reload();
    } catch (err) {
      error.textContent = errorText(err);
      send.disabled = false;
    }
  });
  return h(
    "li",
    { class: "box", data: { complaint: c.id } },
    h("h3", {}, `${c.reference} · ${prisonName(c.prison_id)} · ${tOr(`complaintCategory.${c.category}`, c.category)}`),
    h("p", { class: "muted" }, `${c.complainant.name} · ${formatDateTime(c.created_at)}`),
    c.about ? h("p", { class: "muted" }, t(`contest.about.${c.about.kind}`, { id: c.about.id })) : null,
    h("p", { class: "pre" }, c.body),
    h("h4", {}, t("admin.escalated.history")),
    history,
    form,
  );
}

/** Load and show the escalated complaints; `prisonName(id)` names a prison. */
export async function loadEscalated(prisonName) {
  const list = $("#escalated");
  const { complaints } = await api.get("/complaints", { state: "escalated" });
  const full = await Promise.all(complaints.map((c) => api.get(`/complaints/${c.id}`)));
  const reload = () => loadEscalated(prisonName);
  replace(
    list,
    ...(full.length
      ? full.map((c) => item(c, prisonName, reload))
      : [h("li", { class: "muted", id: "escalated-none" }, t("admin.escalated.none"))]),
  );
}
