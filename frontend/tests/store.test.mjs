import assert from "node:assert/strict";
import { test } from "node:test";

import { jsonStore, memoryStorage } from "../static/frontend/lib/store.js";

test("jsonStore keeps JSON values", () => {
  const s = jsonStore(memoryStorage());
  assert.equal(s.get("k"), null);
  s.set("k", { a: [1, 2] });
  assert.deepEqual(s.get("k"), { a: [1, 2] });
  s.del("k");
  assert.equal(s.get("k"), null);
});

test("a full, broken or missing storage is not an error", () => {
  const broken = {
    getItem: () => "{not json",
    setItem: () => {
      throw new Error("QuotaExceededError");
    },
    removeItem: () => {
      throw new Error("SecurityError");
    },
  };
  const s = jsonStore(broken);
  assert.equal(s.get("k"), null);
  s.set("k", 1);
  s.del("k");
  const none = jsonStore(() => undefined); // no localStorage at all (Node)
  assert.equal(none.get("k"), null);
  none.set("k", 1);
});
