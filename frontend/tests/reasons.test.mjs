import assert from "node:assert/strict";
import { test } from "node:test";

import { errorText } from "../static/frontend/lib/http.js";
import { REASON_DELAYS, Reasons } from "../static/frontend/label/reasons.js";

function reasons(...answers) {
  const slept = [];
  const r = new Reasons({ api: async () => answers.shift(), errorText, sleep: async (ms) => void slept.push(ms) });
  return { r, slept };
}

const load = async (r, wanted = () => true) => {
  const said = [];
  const ok = await r.load(4, { say: (t) => said.push(t), stillWanted: wanted });
  return { ok, said };
};

test("on by default for an item with a suggestion; R's choice holds for the next items", () => {
  const { r } = reasons();
  r.reset({ prediction: { value: {} } });
  assert.equal(r.on, true);
  r.reset({ prediction: null });
  assert.equal(r.on, false);
  r.reset({ prediction: {} });
  assert.equal(r.toggle(), false);
  r.reset({ prediction: {} });
  assert.equal(r.on, false);
  assert.equal(r.toggle(), true);
  assert.equal(r.wanted, true);
});

test("polls while the worker computes, then caches the tokens", async () => {
  const tokens = [{ start: 0, end: 1, weight: 1 }];
  const { r, slept } = reasons({ status: 202, data: {} }, { status: 202, data: {} }, { status: 200, data: { tokens, label: "sports" } });
  r.on = true;
  const { ok, said } = await load(r);
  assert.equal(ok, true);
  assert.deepEqual(slept, REASON_DELAYS.slice(0, 2));
  assert.deepEqual(said, ["Computing the reasons…", "Highlighted: the words that weighed most for “sports”."]);
  assert.deepEqual(r.tokens(4), tokens);
  r.on = false;
  assert.deepEqual(r.tokens(4), []);
  // cached: no request
  assert.equal((await load(r)).ok, true);
});

test("gives up after the last delay, on 404, when offline, or when the item changed", async () => {
  const computing = Array.from({ length: REASON_DELAYS.length + 1 }, () => ({ status: 202, data: {} }));
  const slow = reasons(...computing);
  const a = await load(slow.r);
  assert.equal(a.ok, false);
  assert.equal(slow.slept.length, REASON_DELAYS.length);
  assert.match(a.said.at(-1), /still being computed/);
  assert.match((await load(reasons({ status: 404, data: null }).r)).said.at(-1), /no reasons for this item/);
  assert.match((await load(reasons({ status: 0, data: null }).r)).said.at(-1), /Can't reach the server/);
  assert.equal((await load(reasons({ status: 500, data: { detail: "Boom." } }).r)).said.at(-1), "Boom.");
  const moved = await load(reasons({ status: 200, data: { tokens: [] } }).r, () => false);
  assert.deepEqual(moved, { ok: false, said: ["Computing the reasons…"] });
});
