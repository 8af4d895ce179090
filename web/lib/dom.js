// Element builders that only ever set text. User text goes in through textContent or
// createTextNode, never innerHTML/outerHTML/insertAdjacentHTML/document.write: whatever a
// message contains (<script>, <img onerror>) is shown as characters and runs nothing.
//
//   import { h, clear, replace } from "/static/lib/dom.js";
//   h("p", { class: "bubble own", data: { cid } }, message.body)   // body rendered as text
//   h("button", { type: "button", on: { click: save } }, t("save"))
//   h("input", { name: "phone", type: "tel", required: true, autocomplete: "tel" })
//   h("a", { href: "#/prison/3" }, prison.name)                    // only safe URL schemes
//
// Attributes: `class` (string or array, falsy entries skipped), `data` (object ->
// data-* attributes), `on` (object of event listeners), `aria` (object -> aria-*), `text`
// (textContent), booleans (true sets "", false/null/undefined omits), anything else as a
// string attribute. `style` is refused (the CSP forbids inline styles: use a class) and so
// is any on* attribute (the CSP forbids inline handlers: use `on`). URL attributes (href, src,
// action) accept only relative URLs and http(s)/mailto/tel (and data:image for src).
// Children: strings and numbers become text nodes, arrays are flattened, null/false skipped.

const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "poster", "xlink:href"]);
const SAFE_URL = /^(?:[/#?.]|https?:|mailto:|tel:|[^:]*$)/i;
const SAFE_IMAGE = /^data:image\/(?:png|jpeg|gif|webp);base64,[a-z0-9+/=]+$/i;

export function safeUrl(name, value) {
  const text = String(value).trim();
  if (name === "src" && SAFE_IMAGE.test(text)) return text;
  if (text.startsWith("//")) return null; // protocol-relative: another origin
  return SAFE_URL.test(text) ? text : null;
}

function setAttribute(el, name, value) {
  if (value === null || value === undefined || value === false) return;
  const lower = name.toLowerCase();
  if (lower === "style") throw new Error("dom.h: inline styles are refused by the CSP; use a class");
  if (lower.startsWith("on")) throw new Error("dom.h: inline handlers are refused; use `on`");
  if (lower === "innerhtml" || lower === "outerhtml") throw new Error("dom.h: no HTML, ever");
  if (URL_ATTRIBUTES.has(lower)) {
    const url = safeUrl(lower, value);
    if (url === null) return; // javascript:, vbscript:, data:text/html, ... : dropped
    el.setAttribute(name, url);
    return;
  }
  if (value === true) {
    el.setAttribute(name, "");
    return;
  }
  if (lower === "value" && "value" in el) {
    el.value = String(value);
    return;
  }
  el.setAttribute(name, String(value));
}

/** Append children (text, nodes, arrays of them) to `el`; returns `el`. */
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === true) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Build an element: h(tag, attributes?, ...children). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") {
      const classes = Array.isArray(value) ? value : [value];
      for (const cls of classes) if (cls) el.classList.add(...String(cls).split(/\s+/).filter(Boolean));
    } else if (name === "data") {
      for (const [key, v] of Object.entries(value || {})) {
        if (v !== null && v !== undefined) el.dataset[key] = String(v);
      }
    } else if (name === "aria") {
      for (const [key, v] of Object.entries(value || {})) setAttribute(el, `aria-${key}`, v);
    } else if (name === "on") {
      for (const [event, fn] of Object.entries(value || {})) if (fn) el.addEventListener(event, fn);
    } else if (name === "text") {
      el.textContent = value === null || value === undefined ? "" : String(value);
    } else {
      setAttribute(el, name, value);
    }
  }
  return append(el, children);
}

/** A text node (for symmetry with h). */
export function text(value) {
  return document.createTextNode(value === null || value === undefined ? "" : String(value));
}

/** Remove every child of `el`; returns `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replace the children of `el`; returns `el`. */
export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

/** Set textContent (the only way text reaches the page). */
export function setText(el, value) {
  el.textContent = value === null || value === undefined ? "" : String(value);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Show or hide with the `hidden` attribute (no inline styles). */
export function show(el, visible = true) {
  el.hidden = !visible;
  return el;
}

/** The values of a form's named fields as an object of trimmed strings (files skipped). */
export function formValues(form) {
  const values = {};
  for (const [key, value] of new FormData(form).entries()) {
    if (typeof value === "string") values[key] = value.trim();
  }
  return values;
}
