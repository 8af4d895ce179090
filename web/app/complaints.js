// Complaints to the supervisors: file one about a prison where I have a verified inmate, and
// follow each one's state and history (live `complaint` events).

import { api } from "/static/lib/api.js";
import { h, replace } from "/static/lib/dom.js";
import { formatDate, formatDateTime, t, tOr } from "/static/lib/i18n.js";
import { field, notice, onSubmit, tx } from "/static/lib/ui.js";
import { badge, toast, view } from "/static/app/view.js";

const CATEGORIES = ["staff_conduct", "visits", "health_care", "money", "information", "other"];

export function complaintsView(ctx) {
  const out = notice();
  const listError = notice();
  const list = h("ul", { class: "list", id: "complaints" });
  const prisonSelect = h("select", { name: "prison_id", required: true });
  const categorySelect = h("select", { name: "category", required: true });
  let complaints = [];
  const open = new Map(); // id -> detail with history, for expanded items

  const fill = () => {
    const chosen = prisonSelect.value;
    replace(prisonSelect, 
      ...ctx.followedPrisons().map((id) => h("option", { value: id }, ctx.prisons.get(id) ? ctx.prisons.get(id).name : `#${id}`)),
    );
    if (chosen) prisonSelect.value = chosen;
    const category = categorySelect.value;
    replace(categorySelect, ...CATEGORIES.map((c) => h("option", { value: c }, t(`complaintCategory.${c}`))));
    if (category) categorySelect.value = category;
  };
  const form = h(
    "form",
    { class: "card form", id: "complaint-form" },
    tx("h2", "complaints.new"),
    tx("p", "complaints.intro", {}, { class: "muted" }),
    field("complaints.prison", prisonSelect),
    field("complaints.category", categorySelect),
    field("complaints.body", h("textarea", { name: "body", required: true, maxlength: 4000, rows: 5 })),
    out,
    h("div", { class: "actions" }, tx("button", "complaints.new", {}, { type: "submit", class: "primary" })),
  );
  onSubmit(form, out, async (values, f) => {
    const prisonId = Number(values.prison_id);
    const request = { prison_id: prisonId, category: values.category, body: values.body };
    const conv = [...ctx.conversations.values()].find((c) => c.prison_id === prisonId);
    if (conv) request.conversation_id = conv.id;
    const filed = await api.post("/complaints", request);
    f.reset();
    fill();
    out.show(t("complaints.filed", { reference: filed.reference }), "ok");
    await load();
  });

  // The supervisors' answer is what the relative waits for: shown in the item, not behind the
  // history toggle; the deadline only while an answer is still due.
  const ANSWERED = new Set(["answered", "closed"]);
  const answers = new Map(); // id -> the complaint with its history, once it has an answer
  const answerOf = (c) => {
    const full = answers.get(c.id) || open.get(c.id);
    const given = full ? (full.history || []).filter((e) => e.state === "answered" && e.message) : [];
    return given.length ? given[given.length - 1] : null;
  };
  const aboutLink = (c) => {
    const conv = c.conversation_id ? ctx.conversations.get(c.conversation_id) : null;
    return conv ? h("p", {}, tx("a", "complaints.conversation", {}, { href: `#/inmate/${conv.inmate_id}`, class: "app-complaint-conv" })) : null;
  };
  const item = (c) => {
    const detail = open.get(c.id);
    const answer = answerOf(c);
    const toggle = h(
      "button",
      { type: "button", class: "link-button", aria: { expanded: detail ? "true" : "false" }, on: { click: () => expand(c.id) } },
      t("complaints.history"),
    );
    return h(
      "li",
      { data: { complaint: c.id, state: c.state } },
      h("div", { class: "row" }, h("strong", { class: "grow" }, t("complaints.reference", { reference: c.reference })), badge("complaintState", c.state)),
      h("p", { class: "muted" }, tOr(`complaintCategory.${c.category}`, c.category), " · ", formatDateTime(c.created_at)),
      h("p", { class: "pre" }, c.body),
      aboutLink(c),
      answer
        ? h(
            "section",
            { class: "app-answer" },
            tx("h3", "complaints.answer"),
            h("p", { class: "pre" }, answer.message),
            h("p", { class: "muted small" }, answer.by ? `${answer.by.name} · ` : "", formatDateTime(answer.at)),
          )
        : null,
      c.deadline && !ANSWERED.has(c.state) ? h("p", { class: "muted app-due" }, t("complaints.due", { date: formatDate(c.deadline) })) : null,
      toggle,
      detail
        ? h(
            "ol",
            { class: "list history" },
            (detail.history || []).map((e) =>
              h("li", {}, h("div", { class: "row" }, badge("complaintState", e.state), h("span", { class: "muted" }, formatDateTime(e.at))), h("p", { class: "pre" }, e.message)),
            ),
          )
        : null,
    );
  };
  const render = () => {
    replace(list, ...(complaints.length ? complaints.map(item) : [tx("li", "complaints.none", {}, { class: "muted empty" })]));
  };
  const expand = async (id) => {
    if (open.has(id)) open.delete(id);
    else {
      try {
        open.set(id, await api.get(`/complaints/${id}`));
      } catch (err) {
        listError.error(err);
      }
    }
    render();
  };
  const load = async () => {
    try {
      complaints = (await api.get("/complaints")).complaints || [];
      listError.clear();
    } catch (err) {
      listError.error(err);
    }
    for (const id of [...open.keys()]) {
      try {
        open.set(id, await api.get(`/complaints/${id}`));
      } catch {
        open.delete(id);
      }
    }
    render();
    // the answers (the list does not carry them): one look each, then shown in place
    const pending = complaints.filter((c) => c.state !== "received" && !open.has(c.id));
    const got = await Promise.all(pending.map((c) => api.get(`/complaints/${c.id}`).catch(() => null)));
    answers.clear();
    for (const full of got) if (full) answers.set(full.id, full);
    if (got.length) render();
  };

  fill();
  render();
  load();
  const el = h(
    "section",
    { class: "view" },
    tx("h1", "complaints.title"),
    ctx.followedPrisons().length ? form : tx("p", "home.noInmates", {}, { class: "notice notice-warn" }),
    tx("h2", "complaints.mine"),
    listError,
    list,
  );
  const offs = [
    ctx.on("complaint", (ev) => {
      toast(t("complaints.changed", { reference: ev.reference, state: tOr(`complaintState.${ev.state}`, ev.state) }));
      load();
    }),
    ctx.on("prisons", fill),
  ];
  return view(el, {
    stop: () => offs.forEach((off) => off()),
    rerender: () => {
      fill();
      render();
    },
  });
}
