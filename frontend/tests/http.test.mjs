import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { api, csrfToken, errorLines, errorText } from "../static/frontend/lib/http.js";

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
  delete globalThis.document;
});

function fakeFetch(status, body) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init });
    return { status, json: async () => (body === undefined ? Promise.reject(new Error("no body")) : body) };
  };
  return calls;
}

test("errorText: the detail, then each field error", () => {
  const data = { detail: "Invalid input.", errors: [{ field: "labels[1].hotkey", message: "Duplicate hotkey." }, { message: "Also this." }] };
  assert.equal(errorText(data, "fallback"), "Invalid input. labels[1].hotkey: Duplicate hotkey. Also this.");
  assert.deepEqual(errorLines(data), ["labels[1].hotkey: Duplicate hotkey.", "Also this."]);
});

test("errorText falls back when the answer is not an API error", () => {
  assert.equal(errorText(null, "Not saved (HTTP 502)."), "Not saved (HTTP 502).");
  assert.equal(errorText("oops", "fallback"), "fallback");
  assert.equal(errorText({ errors: [] }, "fallback"), "fallback");
  assert.deepEqual(errorLines(null), []);
  assert.deepEqual(errorLines({ errors: "x" }), []);
});

test("csrfToken reads the meta tag when asked, and is empty outside a page", () => {
  assert.equal(csrfToken(), "");
  globalThis.document = { querySelector: (sel) => (sel === 'meta[name="csrf-token"]' ? { content: "tok" } : null) };
  assert.equal(csrfToken(), "tok");
});

test("api sends JSON with the CSRF token on writes", async () => {
  globalThis.document = { querySelector: () => ({ content: "tok" }) };
  const calls = fakeFetch(201, { id: 7 });
  const res = await api("POST", "/api/x", { body: { a: 1 }, headers: { "Idempotency-Key": "k" } });
  assert.deepEqual(res, { status: 201, data: { id: 7 } });
  const { url, init } = calls[0];
  assert.equal(url, "/api/x");
  assert.equal(init.method, "POST");
  assert.equal(init.body, '{"a":1}');
  assert.equal(init.credentials, "same-origin");
  assert.deepEqual(init.headers, { Accept: "application/json", "Idempotency-Key": "k", "X-CSRFToken": "tok", "Content-Type": "application/json" });
});

test("api sends no token and no body on GET", async () => {
  const calls = fakeFetch(200, { ok: true });
  await api("GET", "/api/y");
  assert.deepEqual(calls[0].init.headers, { Accept: "application/json" });
  assert.equal(calls[0].init.body, undefined);
});

test("api sends FormData as it is", async () => {
  const calls = fakeFetch(202, { job: 1 });
  const form = new FormData();
  form.append("file", "x");
  await api("POST", "/api/import", { body: form });
  assert.equal(calls[0].init.body, form);
  assert.equal(calls[0].init.headers["Content-Type"], undefined);
});

test("api answers status 0 when offline, and data null for 204 or a body that is not JSON", async () => {
  globalThis.fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  assert.deepEqual(await api("GET", "/"), { status: 0, data: null });
  fakeFetch(204, { never: "read" });
  assert.deepEqual(await api("DELETE", "/"), { status: 204, data: null });
  fakeFetch(502, undefined);
  assert.deepEqual(await api("GET", "/"), { status: 502, data: null });
});
