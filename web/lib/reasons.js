// The published reason codes (GET /api/v1/reasons, domain/reasons.py): why a decision refused
// a relative something, in the reader's language.
//
//   import { loadReasons, reasonText, reasonPicker } from "/static/lib/reasons.js";
//   await loadReasons();                               // once per page (cached)
//   reasonText("link.reject", link.reason_code)       // "证明材料不足" / "The evidence ..."
//   const picker = reasonPicker("visit.decline");      // {element, value(): {reason_code, reason}}
//
// Staff forms pick a code from the list (`reasonPicker`: a select and a free-text field,
// required with "other"); the relative app shows the code's text with the officer's words.

import { api } from "/static/lib/api.js";
import { h, replace } from "/static/lib/dom.js";
import { locale, onLocaleChange, t } from "/static/lib/i18n.js";

let loading = null;
let items = [];

/** The list, fetched once per page. */
export function loadReasons() {
  if (!loading) {
    loading = api.get("/reasons").then(
      (got) => {
        items = got.items || [];
        return items;
      },
      (err) => {
        loading = null; // try again next time
        throw err;
      },
    );
  }
  return loading;
}

/** The text of `code` for decisions of `kind`, in the current language ("" when unknown). */
export function reasonText(kind, code) {
  if (!code) return "";
  const found = items.find((r) => r.kind === kind && r.code === code);
  if (!found) return code;
  return found.text[locale()] || found.text.en || code;
}

/** A select of the reasons of `kind` and a free-text field. `value()` is the body part of a
 * decision ({reason_code, reason}), or null after showing why (other needs the text). */
export function reasonPicker(kind, { id = "" } = {}) {
  const select = h("select", { name: "reason_code", class: "reason-code", aria: { label: t("reasons.pick") } });
  const text = h("input", {
    name: "reason",
    maxlength: 1000,
    class: "reason-text",
    placeholder: t("reasons.text"),
    aria: { label: t("reasons.text") },
  });
  const fill = () => {
    const chosen = select.value;
    replace(
      select,
      h("option", { value: "" }, t("reasons.pick")),
      items.filter((r) => r.kind === kind).map((r) => h("option", { value: r.code }, reasonText(kind, r.code))),
    );
    select.value = chosen;
  };
  fill();
  loadReasons().then(fill, () => null);
  const off = onLocaleChange(fill);
  const element = h("span", { class: "reason-picker", data: id ? { picker: id } : {} }, select, text);
  return {
    element,
    select,
    text,
    stop: off,
    /** {reason_code, reason} or null when incomplete (the select or the text is focused). */
    value() {
      const code = select.value;
      const words = text.value.trim();
      if (!code) {
        select.focus();
        return null;
      }
      if (code === "other" && !words) {
        text.focus();
        return null;
      }
      return words ? { reason_code: code, reason: words } : { reason_code: code };
    },
  };
}
