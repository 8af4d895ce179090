// Family links: ask to be linked to an inmate, and follow each request's state live.

import { refusal, refusalKind } from "/static/app/contest.js";
import { loadReasons } from "/static/lib/reasons.js";
import { api } from "/static/lib/api.js";
import { h, replace } from "/static/lib/dom.js";
import { formatDateTime, t, tOr } from "/static/lib/i18n.js";
import { field, notice, onSubmit, tx } from "/static/lib/ui.js";
import { badge, toast, view } from "/static/app/view.js";
import { filePicker } from "/static/lib/attachments.js";

const RELATIONSHIPS = ["spouse", "parent", "child", "sibling", "grandparent", "other"];

export function linksView(ctx) {
  const out = notice();
  // photos of the household register, a marriage certificate...: seen by the deciding officer
  const picker = filePicker({ max: 3, id: "evidence-files", onError: (err) => out.error(err) });
  const prisonSelect = h("select", { name: "prison", required: true });
  const relationship = h("select", { name: "relationship", required: true });
  const fill = () => {
    const chosen = prisonSelect.value;
    replace(prisonSelect, 
      h("option", { value: "" }, t("links.choosePrison")),
      [...ctx.prisons.values()].map((p) => h("option", { value: p.code }, `${p.name} (${p.code})`)),
    );
    prisonSelect.value = chosen;
    const rel = relationship.value;
    // no default: a relationship nobody chose was sent as "spouse"
    replace(
      relationship,
      h("option", { value: "" }, t("links.chooseRelationship")),
      RELATIONSHIPS.map((r) => h("option", { value: r }, t(`relationship.${r}`))),
    );
    relationship.value = rel;
  };
  fill();
  const form = h(
    "form",
    { class: "card form", id: "link-form" },
    tx("h2", "home.requestLink"),
    tx("p", "links.intro", {}, { class: "muted" }),
    field("links.prison", prisonSelect),
    field("links.inmateNumber", h("input", { name: "inmate_number", type: "text", required: true, maxlength: 40, autocomplete: "off" })),
    field("links.relationship", relationship),
    field("links.evidence", h("textarea", { name: "evidence", maxlength: 2000, rows: 3 })),
    h("div", { class: "field evidence-files" }, tx("p", "links.files", {}, { class: "hint" }), h("div", { class: "row" }, picker.input, picker.button), picker.list),
    out,
    h("div", { class: "actions" }, tx("button", "links.submit", {}, { type: "submit", class: "primary" })),
  );
  onSubmit(form, out, async (values, f) => {
    await api.post("/links", {
      prison: values.prison,
      inmate_number: values.inmate_number,
      relationship: values.relationship,
      evidence: values.evidence || "",
      attachments: picker.ids(),
    });
    f.reset();
    picker.reset();
    fill();
    out.show(t("links.submitted"), "ok");
    await ctx.loadLinks();
  });
  const list = h("ul", { class: "list", id: "links" });
  const renderList = () => {
    replace(list, 
      ...(ctx.links.length
        ? ctx.links.map((link) =>
            h(
              "li",
              { data: { link: link.id, state: link.state } },
              h(
                "div",
                { class: "row" },
                h("strong", { class: "grow" }, `${link.prison} · ${link.inmate_number}`),
                badge("linkState", link.state),
              ),
              h("p", { class: "muted" }, tOr(`relationship.${link.relationship}`, link.relationship), " · ", formatDateTime(link.created_at)),
              refusalKind("link", link.state)
                ? refusal("link", link)
                : link.reason
                  ? h("p", {}, t("links.reason", { reason: link.reason }))
                  : null,
              link.state === "verified" && link.inmate_id ? tx("a", "home.open", {}, { href: `#/inmate/${link.inmate_id}`, class: "button primary" }) : null,
            ),
          )
        : [tx("p", "links.none", {}, { class: "muted" })]),
    );
  };
  renderList();
  loadReasons().then(renderList, () => null);
  const offs = [
    ctx.on("links", renderList),
    ctx.on("prisons", fill),
    ctx.on("link", (ev) => toast(t("links.stateChanged", { state: tOr(`linkState.${ev.state}`, ev.state) }))),
  ];
  const el = h("section", { class: "view" }, tx("h1", "links.title"), form, tx("h2", "links.mine"), list);
  return view(el, {
    stop: () => offs.forEach((off) => off()),
    rerender: () => {
      fill();
      renderList();
    },
  });
}
