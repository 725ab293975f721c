// Every module but the page entries (*/main.js) loads without a document: nothing runs at import time.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";

const root = new URL("../static/frontend/", import.meta.url);

test("modules other than the entries import in Node (no DOM at import time)", async () => {
  assert.equal(globalThis.document, undefined);
  const loaded = [];
  for (const dir of ["lib", "label", "review", "manage", "dashboard", "snapshots"]) {
    for (const name of readdirSync(new URL(dir, root)).filter((n) => n.endsWith(".js") && n !== "main.js")) {
      await import(new URL(`${dir}/${name}`, root));
      loaded.push(`${dir}/${name}`);
    }
  }
  assert.ok(loaded.includes("label/page.js") && loaded.includes("lib/http.js"), loaded.join(", "));
});

test("the entries are the only modules that start a page", () => {
  // the pages load the entries and nothing else ...
  const templates = new URL("../templates/frontend/", import.meta.url);
  const loaded = new Set();
  for (const name of readdirSync(templates).filter((n) => n.endsWith(".html"))) {
    const html = readFileSync(new URL(name, templates), "utf8");
    for (const m of html.matchAll(/<script[^>]*\bsrc="\{% static 'frontend\/([^']+)' %\}"/g)) loaded.add(m[1]);
  }
  assert.deepEqual([...loaded].sort(), ["dashboard/main.js", "label/main.js", "manage/main.js", "review/main.js", "snapshots/main.js"]);
  // ... and no module imports an entry (which would start its page from another one)
  const imports = new Map();
  for (const dir of ["lib", "label", "review", "manage", "dashboard", "snapshots"]) {
    for (const name of readdirSync(new URL(dir, root)).filter((n) => n.endsWith(".js"))) {
      const source = readFileSync(new URL(`${dir}/${name}`, root), "utf8");
      imports.set(`${dir}/${name}`, [...source.matchAll(/^import\b(?:[^;"']*?\bfrom)?\s*["']([^"']+)["']/gm)].map((m) => m[1]));
    }
  }
  assert.ok(imports.get("label/main.js").includes("./page.js"), "the import scan finds imports");
  for (const [module, specs] of imports) {
    for (const spec of specs) assert.ok(!spec.endsWith("/main.js") && spec !== "./main.js", `${module} imports ${spec}`);
  }
});
