// Refusals you can contest, in the relative app: a refused decision (a link rejected or
// revoked, a visit declined, a complaint closed) shows its published reason in the reader's
// language (web/lib/reasons.js) with the officer's words, and a "complain about this
// decision" link to #/complaints/about/{kind}/{id}, where the complaint is filed with
// about: {kind, id} (the server lets a relative with no verified inmate left do that much).

import { h } from "/static/lib/dom.js";
import { t } from "/static/lib/i18n.js";
import { reasonText } from "/static/lib/reasons.js";
import { tx } from "/static/lib/ui.js";

const REFUSED = {
  link: { rejected: "link.reject", revoked: "link.revoke" },
  visit: { declined: "visit.decline" },
  complaint: { closed: "complaint.close" },
};

/** The reason kind of a decision in `state`, or null when it refused nothing. */
export function refusalKind(kind, state) {
  return (REFUSED[kind] || {})[state] || null;
}

/** The refusal's reason (code text and free text) and the contest link; [] when `state` is
 * no refusal. */
export function refusal(kind, item) {
  const reasonKind = refusalKind(kind, item.state);
  if (!reasonKind) return [];
  const code = item.reason_code ? reasonText(reasonKind, item.reason_code) : "";
  const words = item.reason && item.reason !== code ? item.reason : "";
  return [
    h(
      "p",
      { class: "refusal-reason", data: { reasonCode: item.reason_code || "" } },
      t("contest.reason", { reason: [code, words].filter(Boolean).join(" · ") || t("contest.noReason") }),
    ),
    tx("a", "contest.complain", {}, {
      href: `#/complaints/about/${kind}/${item.id}`,
      class: "button contest",
      data: { contest: `${kind}:${item.id}` },
    }),
  ];
}
