// Every module but the page entries (*/main.js) loads without a document: nothing runs at import time.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";

const root = new URL("../static/frontend/", import.meta.url);

test("modules other than the entries import in Node (no DOM at import time)", async () => {
  assert.equal(globalThis.document, undefined);
  const loaded = [];
  for (const dir of ["lib", "label", "review", "manage"]) {
    for (const name of readdirSync(new URL(dir, root)).filter((n) => n.endsWith(".js") && n !== "main.js")) {
      await import(new URL(`${dir}/${name}`, root));
      loaded.push(`${dir}/${name}`);
    }
  }
  assert.ok(loaded.includes("label/page.js") && loaded.includes("lib/http.js"), loaded.join(", "));
});

test("the entries are the only modules that start a page", () => {
  for (const dir of ["label", "review", "manage"]) assert.ok(readdirSync(new URL(dir, root)).includes("main.js"), dir);
});
