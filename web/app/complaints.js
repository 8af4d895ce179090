// Complaints to the supervisors: file one about a prison where I have a verified inmate, and
// follow each one's state and history (live `complaint` events).
//
// Refusals you can contest (#/complaints/about/{kind}/{id}): a complaint about a decision
// that refused me something (web/app/contest.js), even with no verified inmate left. A
// closed complaint shows its reason and can be contested in turn; an answered one can be
// escalated to the bureau, once (POST /complaints/{id}/escalate).

import { api } from "/static/lib/api.js";
import { h, replace } from "/static/lib/dom.js";
import { errorText, formatDate, formatDateTime, t, tOr } from "/static/lib/i18n.js";
import { field, notice, onSubmit, tx } from "/static/lib/ui.js";
import { badge, toast, view } from "/static/app/view.js";
import { refusal } from "/static/app/contest.js";
import { loadReasons } from "/static/lib/reasons.js";

const CATEGORIES = ["staff_conduct", "visits", "health_care", "money", "information", "other"];

export function complaintsView(ctx, about = null) {
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

  // a complaint about one decision (the link in a refusal led here)
  const aboutOut = notice();
  const aboutCategory = h("select", { name: "category", required: true });
  const fillAbout = () => {
    const chosen = aboutCategory.value;
    replace(aboutCategory, ...CATEGORIES.map((c) => h("option", { value: c }, t(`complaintCategory.${c}`))));
    if (chosen) aboutCategory.value = chosen;
  };
  const aboutForm = about
    ? h(
        "form",
        { class: "card form", id: "contest-form", data: { about: `${about.kind}:${about.id}` } },
        tx("h2", "contest.title"),
        h("p", { class: "contest-about" }, t(`contest.about.${about.kind}`, { id: about.id })),
        tx("p", "contest.intro", {}, { class: "muted" }),
        field("complaints.category", aboutCategory),
        field("complaints.body", h("textarea", { name: "body", required: true, maxlength: 4000, rows: 5 })),
        aboutOut,
        h("div", { class: "actions" }, tx("button", "contest.submit", {}, { type: "submit", class: "primary" })),
      )
    : null;
  if (aboutForm) {
    fillAbout();
    onSubmit(aboutForm, aboutOut, async (values) => {
      const filed = await api.post("/complaints", { category: values.category, body: values.body, about });
      toast(t("complaints.filed", { reference: filed.reference }));
      location.hash = "#/complaints";
    });
  }

  // escalating an answered complaint to the bureau, once
  const escalateBox = (c) => {
    const box = h("div", { class: "escalate", data: { escalate: c.id } });
    const result = notice();
    const ask = () =>
      replace(
        box,
        tx("button", "complaints.escalate", {}, { type: "button", data: { action: "escalate" }, on: { click: write } }),
      );
    const write = () => {
      const why = h("textarea", { name: "message", required: true, maxlength: 4000, rows: 3, aria: { label: t("complaints.escalateWhy") } });
      const send = async (event) => {
        const button = event.currentTarget;
        if (!why.value.trim()) {
          result.show(t("complaints.escalateWhy"), "error");
          why.focus();
          return;
        }
        button.disabled = true;
        try {
          await api.post(`/complaints/${c.id}/escalate`, { message: why.value });
          toast(t("complaints.escalatedNote"));
          await load();
        } catch (err) {
          result.show(errorText(err), "error");
          button.disabled = false;
        }
      };
      replace(
        box,
        tx("label", "complaints.escalateWhy", {}, { class: "small" }),
        why,
        h(
          "div",
          { class: "actions" },
          tx("button", "complaints.escalateSend", {}, { type: "button", class: "primary", data: { action: "escalate-send" }, on: { click: send } }),
          tx("button", "common.cancel", {}, { type: "button", on: { click: ask } }),
        ),
        result,
      );
      why.focus();
    };
    ask();
    return box;
  };

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
      c.about ? h("p", { class: "muted contest-about" }, t(`contest.about.${c.about.kind}`, { id: c.about.id })) : null,
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
      c.state === "closed" ? refusal("complaint", c) : null,
      c.state === "answered" && !c.escalated ? escalateBox(c) : null,
      c.escalated ? tx("p", "complaints.escalatedNote", {}, { class: "muted small app-escalated" }) : null,
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
      [complaints] = await Promise.all([
        api.get("/complaints").then((got) => got.complaints || []),
        loadReasons().catch(() => null),
      ]);
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
    aboutForm,
    aboutForm ? null : ctx.followedPrisons().length ? form : tx("p", "contest.hint", {}, { class: "notice notice-warn" }),
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
      fillAbout();
      render();
    },
  });
}
