// Fact cards: a `system` message whose body is a structured card (server/api/inmates.py:
// {"as_of", "fact", "source", "text": {"en", "zh-CN"}, "values"}), shown in the reader's
// language. It used to be one bubble holding the sentence in both languages.

import { locale } from "/static/lib/i18n.js";

/** The card in `body`, or null when the body is no fact card (an older one: plain text). */
export function factCard(body) {
  if (typeof body !== "string" || !body.startsWith("{")) return null;
  try {
    const card = JSON.parse(body);
    return card && typeof card.fact === "string" && card.text && typeof card.text === "object" ? card : null;
  } catch {
    return null;
  }
}

/** What to show for a message body: a fact card's sentence in the current language (or the
 * other one if it lacks this one), any other body as it is. */
export function shownBody(kind, body) {
  if (kind !== "system") return body;
  const card = factCard(body);
  if (!card) return body;
  return card.text[locale()] || card.text.en || card.text["zh-CN"] || body;
}
