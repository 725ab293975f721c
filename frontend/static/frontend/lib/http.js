// The one HTTP helper of every page: JSON in and out, the session cookie, the CSRF token.
//
// api() never throws for a network failure: it answers {status: 0, data: null}, so each caller
// handles "offline" where it handles every other status. Errors from the API have the shape
// {"detail", "errors": [{field, message}]} (docs/api.md); errorText() turns them into one line.

// The token Django renders into <meta name="csrf-token"> (frontend/base.html); read when a request
// is made, not at import time, so this module also loads outside a page (the Node unit tests).
export function csrfToken() {
  const meta = globalThis.document && globalThis.document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export const OFFLINE = 0;

/**
 * Sends one request; resolves to {status, data} (data: the parsed JSON body, or null).
 * body: a FormData is sent as it is, anything else as JSON.
 */
export async function api(method, url, { body, headers } = {}) {
  const h = { Accept: "application/json", ...(headers || {}) };
  if (method !== "GET") h["X-CSRFToken"] = csrfToken();
  let payload;
  if (typeof FormData !== "undefined" && body instanceof FormData) payload = body;
  else if (body !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, { method, headers: h, body: payload, credentials: "same-origin", cache: "no-store" });
  } catch {
    return { status: OFFLINE, data: null };
  }
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  return { status: res.status, data };
}

/** Each {field, message} of an API error as one line of text ("field: message"). */
export function errorLines(data) {
  if (!data || typeof data !== "object" || !Array.isArray(data.errors)) return [];
  return data.errors.filter((e) => e && e.message).map((e) => (e.field ? `${e.field}: ${e.message}` : String(e.message)));
}

/** An API error as one line: its detail (or the fallback), then each field error. */
export function errorText(data, fallback) {
  if (!data || typeof data !== "object") return fallback;
  return [data.detail || fallback, ...errorLines(data)].filter(Boolean).join(" ");
}
