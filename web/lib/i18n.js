// Strings, dates and money in the user's language: zh-CN (default) or English.
//
//   import { t, errorText, formatMoney, formatDateTime, setLocale, applyI18n } from "/static/lib/i18n.js";
//   t("chat.onDuty", { n: 3 })          // "当前有 3 名干警值班" / "3 officers on duty now"
//   errorText(err)                      // an ApiError / error frame / {code} -> a sentence
//   formatMoney(31250)                  // integer fen -> "312.50 元" / "¥312.50"
//   <h1 data-i18n="app.title"></h1>     // applyI18n() fills it, and again on every switch
//
// Every string lives in the catalogs web/i18n/zh-CN.js and web/i18n/en.js (flat keys, each
// area in its own marked section). A value is a string with {name} placeholders, or for
// counts an object of plural forms {one, other} chosen by params.n. A key missing from the
// current catalog falls back to the key itself (and is reported once on the console as a
// warning, so tests notice). Only the current language's catalog is loaded (a switch loads
// the other first, then re-renders). The choice is remembered in localStorage
// ("kinline.locale"); switching re-renders every [data-i18n*] element and tells the
// listeners registered with onLocaleChange so pages re-render what they built themselves.

import { h } from "/static/lib/dom.js";

export const LOCALES = ["zh-CN", "en"];
export const DEFAULT_LOCALE = "zh-CN";
const NAMES = { "zh-CN": "中文", en: "English" }; // in the switcher, each in its own language
const STORAGE_KEY = "kinline.locale";
const CATALOGS = {}; // locale -> catalog, once loaded

/** Load a language's catalog (next to this module, so a fingerprinted path works too). */
async function loadCatalog(code) {
  if (!CATALOGS[code]) {
    CATALOGS[code] = (await import(new URL(`../i18n/${code}.js`, import.meta.url).href)).default;
  }
  return CATALOGS[code];
}

let current = readStored();
await loadCatalog(current);
let timeZone = "Asia/Shanghai"; // the bureau's local time (Settings.timezone)
const listeners = new Set();
const reported = new Set();

function readStored() {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (LOCALES.includes(stored)) return stored;
  } catch {
    // storage disabled: the default, not remembered
  }
  return DEFAULT_LOCALE;
}

export function locale() {
  return current;
}

/** Switch language (its catalog loaded first), remember it, re-render [data-i18n] elements,
 * tell the listeners. */
export async function setLocale(next) {
  if (!LOCALES.includes(next)) throw new Error(`unknown locale ${next}`);
  await loadCatalog(next);
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // not remembered; still switched for this page
  }
  if (next === current) return;
  current = next;
  applyI18n(document);
  for (const fn of [...listeners]) fn(next);
}

/** Call `fn(locale)` after every switch; returns an unsubscribe. */
export function onLocaleChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Use another IANA zone for dates (default Asia/Shanghai, the bureau's). */
export function setTimeZone(zone) {
  timeZone = zone;
}

export function hasKey(key) {
  return key in CATALOGS[current];
}

/** t(key, params) when the catalogs have the key, else `fallback` (no warning): for labels
 * of values the server may extend (states, categories), shown raw when not translated. */
export function tOr(key, fallback, params = {}) {
  return hasKey(key) ? t(key, params) : String(fallback ?? "");
}

function lookup(key) {
  if (key in CATALOGS[current]) return CATALOGS[current][key];
  if (!reported.has(key)) {
    reported.add(key);
    console.warn(`i18n: no ${current} string for "${key}"`);
  }
  return key;
}

/** The string for `key` in the current language, with {name} placeholders filled. */
export function t(key, params = {}) {
  let value = lookup(key);
  if (value && typeof value === "object") {
    const n = Number(params.n ?? params.count ?? 0);
    const form = new Intl.PluralRules(current).select(n);
    value = value[form] ?? value.other ?? "";
  }
  return String(value).replace(/\{(\w+)\}/g, (match, name) =>
    name in params && params[name] !== null && params[name] !== undefined
      ? String(params[name])
      : match,
  );
}

/** A sentence for an error: an ApiError, an error frame or anything with a `code`. */
export function errorText(error) {
  const code = (error && error.code) || "unknown";
  const key = `error.${code}`;
  if (key in CATALOGS[current]) {
    const field = error && error.field ? fieldName(error.field) : "";
    return t(key, { field });
  }
  return t("error.unknown", { code });
}

/** A form field's name in the current language (for "check the field X"). */
export function fieldName(field) {
  const key = `field.${field}`;
  return key in CATALOGS[current] ? t(key) : field;
}

/** Fill every element of `root` marked data-i18n (text), data-i18n-placeholder,
 * data-i18n-title, data-i18n-aria-label; params from data-i18n-params (JSON). */
export function applyI18n(root = document) {
  if (root === document) {
    document.documentElement.lang = current;
    const title = document.querySelector("title[data-i18n]");
    if (title) document.title = t(title.dataset.i18n);
  }
  const scope = root.querySelectorAll ? root : document;
  const params = (el) => {
    try {
      return el.dataset.i18nParams ? JSON.parse(el.dataset.i18nParams) : {};
    } catch {
      return {};
    }
  };
  for (const el of scope.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n, params(el));
  for (const el of scope.querySelectorAll("[data-i18n-placeholder]")) {
    el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder));
  }
  for (const el of scope.querySelectorAll("[data-i18n-title]")) el.setAttribute("title", t(el.dataset.i18nTitle));
  for (const el of scope.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
}

// -- numbers, money, dates --------------------------------------------------------------------

export function formatNumber(value, options = {}) {
  return new Intl.NumberFormat(current, options).format(value);
}

/** Integer fen -> "312.50 元" (zh-CN) or "¥312.50" (English). */
export function formatMoney(fen) {
  const yuan = Number(fen) / 100;
  if (current === "zh-CN") {
    const number = new Intl.NumberFormat("zh-CN", {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    }).format(yuan);
    return `${number} 元`;
  }
  return new Intl.NumberFormat("en", {
    style: "currency",
    currency: "CNY",
    currencyDisplay: "narrowSymbol",
  }).format(yuan);
}

function asDate(value) {
  if (value instanceof Date) return value;
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value)) {
    return new Date(`${value}T12:00:00Z`); // a calendar day: noon UTC stays that day in Asia
  }
  return new Date(value);
}

function format(value, options) {
  if (value === null || value === undefined || value === "") return "";
  const date = asDate(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(current, { timeZone, ...options }).format(date);
}

/** "2025年3月4日" / "Mar 4, 2025" (a date, a "YYYY-MM-DD" day or an RFC 3339 time). */
export const formatDate = (value) => format(value, { dateStyle: "medium" });
/** "2025/3/4" / "3/4/25": compact, for tables. */
export const formatShortDate = (value) => format(value, { dateStyle: "short" });
/** "2025/3/4 09:30" / "Mar 4, 2025, 9:30 AM". */
export const formatDateTime = (value) => format(value, { dateStyle: "medium", timeStyle: "short" });
/** The bureau's calendar day of a time, "YYYY-MM-DD": messages are grouped by it. */
export const dayKey = (value) => new Intl.DateTimeFormat("en-CA", { timeZone }).format(asDate(value));
/** A day separator's words: "今天" / "Today", "昨天" / "Yesterday", else the date and weekday. */
export function formatDay(value) {
  const key = dayKey(value);
  const now = Date.now();
  if (key === dayKey(now)) return t("chat.today");
  if (key === dayKey(now - 86400000)) return t("chat.yesterday");
  return format(value, { dateStyle: "medium" }) + " " + format(value, { weekday: "short" });
}
/** "09:30" / "9:30 AM". */
export const formatTime = (value) => format(value, { timeStyle: "short" });
/** Weekday name of ISO weekday 1..7 (1 = Monday). */
export function formatWeekday(iso) {
  const monday = new Date(Date.UTC(2024, 0, 1, 12)); // 2024-01-01 was a Monday
  return format(new Date(monday.getTime() + (iso - 1) * 86400000), { weekday: "long" });
}

/** A duration in seconds: "4分12秒" / "4 min 12 s" style, short. */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h) return t("time.hm", { h, m });
  if (m) return t("time.ms", { m, s: rest });
  return t("time.s", { s: rest });
}

/** A <select> switching the language, labelled, kept in sync. Every switch on the page is
 * updated by one listener (registered once), so building headers again and again (signing in
 * and out) leaves nothing behind. */
export function localeSwitcher() {
  const select = h(
    "select",
    {
      class: "locale-switch",
      aria: { label: t("locale.label") },
      data: { i18nAriaLabel: "locale.label" },
      on: { change: (event) => setLocale(event.target.value) },
    },
    LOCALES.map((code) => h("option", { value: code }, NAMES[code])),
  );
  select.value = current;
  return select;
}

listeners.add((next) => {
  for (const select of document.querySelectorAll("select.locale-switch")) select.value = next;
});

/** Items joined with the current language's list separator ("、" / ", "). */
export function formatList(items) {
  return [...items].filter((x) => x !== null && x !== undefined && x !== "").join(t("common.listSeparator"));
}
