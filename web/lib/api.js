// The /api/v1 client of every page: JSON in, JSON out, the session cookie, errors as objects.
//
//   import { api, ApiError, onSignedOut } from "/static/lib/api.js";
//   const me = await api.get("/me");                       // -> parsed JSON
//   await api.post("/links", { prison: "GM", ... });       // -> parsed JSON, or null on 204
//   try { ... } catch (err) { if (err instanceof ApiError) show(errorText(err)); }
//
// Every failure is an ApiError { status, code, message, field }: the server's
// {"error": {code, message, field}} when it sent one, otherwise a code of our own:
// "network" (no answer at all, status 0) or the stable code for the HTTP status. Pages show
// errors through i18n's errorText(err), never the raw body. The cookie is HttpOnly: the
// browser attaches it (same origin) and adds the Origin header the server checks on changes.

export const API_ROOT = "/api/v1";

const CODES = {
  400: "invalid_request",
  401: "not_authenticated",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "too_large",
  429: "rate_limited",
  503: "unavailable",
};

export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const signedOutHandlers = new Set();

/** Call `fn(error)` whenever a request answers 401 (the session ended); returns an unsubscribe. */
export function onSignedOut(fn) {
  signedOutHandlers.add(fn);
  return () => signedOutHandlers.delete(fn);
}

/** "?a=1&b=x" from an object, skipping null, undefined and "". */
export function queryString(params) {
  if (!params) return "";
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function request(method, path, { body, query, signal } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store", signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API_ROOT + path + queryString(query), init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "the server could not be reached");
  }
  if (response.status === 204) return null;
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("application/json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;
  const detail = (data && data.error) || {};
  const error = new ApiError(
    response.status,
    detail.code || CODES[response.status] || (response.status >= 500 ? "internal" : "error"),
    detail.message || response.statusText,
    detail.field || null,
  );
  if (response.status === 401) for (const fn of signedOutHandlers) fn(error);
  throw error;
}

export const api = {
  get: (path, query, options = {}) => request("GET", path, { ...options, query }),
  post: (path, body = {}, options = {}) => request("POST", path, { ...options, body }),
  put: (path, body = {}, options = {}) => request("PUT", path, { ...options, body }),
  patch: (path, body = {}, options = {}) => request("PATCH", path, { ...options, body }),
  delete: (path, options = {}) => request("DELETE", path, options),
  request,
};

export default api;
