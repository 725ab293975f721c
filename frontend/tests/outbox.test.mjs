import assert from "node:assert/strict";
import { test } from "node:test";

import { jsonStore, memoryStorage } from "../static/frontend/lib/store.js";
import {
  Backoff,
  Outbox,
  annotateEntry,
  classify,
  entryRequest,
  newKey,
  skipEntry,
} from "../static/frontend/label/outbox.js";

// timers under the test's control: run() fires the pending callback
function manualTimers() {
  const t = {
    pending: [],
    setTimeout(fn, ms) {
      t.pending.push({ fn, ms });
      return t.pending.length;
    },
    async run() {
      const { fn } = t.pending.shift();
      await fn();
    },
  };
  return t;
}

// a server whose answers are scripted per call
function server(...answers) {
  const s = { calls: [], post: async (entry) => (s.calls.push(entry.key), answers.shift() || { status: 0, data: null }) };
  return s;
}

function makeOutbox(srv, extra = {}) {
  const timers = manualTimers();
  const settled = [];
  const store = jsonStore(memoryStorage());
  const box = new Outbox({ store, key: "ob", post: srv.post, timers, onSettled: (e, r) => settled.push([e.key, r.outcome]), ...extra });
  return { box, timers, settled, store };
}

const item = { id: 5, external_id: "x5" };

test("classify: what each answer means for a kept answer", () => {
  assert.equal(classify(201, {}), "ok");
  assert.equal(classify(200, {}), "ok");
  assert.equal(classify(204, null), "ok");
  assert.equal(classify(0, null), "retry");
  assert.equal(classify(500, null), "retry");
  assert.equal(classify(503, null), "retry");
  assert.equal(classify(429, {}), "retry");
  assert.equal(classify(401, {}), "session");
  assert.equal(classify(403, { detail: "CSRF Failed: CSRF token missing." }), "session");
  assert.equal(classify(403, { detail: "You are not a member." }), "rejected");
  assert.equal(classify(409, { detail: "Every slot of this item was taken" }), "gone");
  assert.equal(classify(400, { detail: "Invalid input." }), "rejected");
});

test("Backoff doubles up to its maximum and starts over on reset", () => {
  const b = new Backoff(1000, 30000);
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  b.reset();
  assert.equal(b.next(), 1000);
});

test("newKey: 32 hex characters from 16 random bytes", () => {
  assert.match(newKey(), /^[0-9a-f]{32}$/);
  assert.equal(newKey((b) => b.fill(171)), "ab".repeat(16));
  assert.notEqual(newKey(), newKey());
});

test("entryRequest: annotations and skips, each with its Idempotency-Key", () => {
  const a = annotateEntry(item, { value: { label: "x" } }, "k1", 1);
  assert.deepEqual(a, { kind: "annotate", key: "k1", item: 5, external_id: "x5", body: { value: { label: "x" } }, at: 1 });
  assert.deepEqual(entryRequest(a), ["POST", "/api/items/5/annotations", { body: { value: { label: "x" } }, headers: { "Idempotency-Key": "k1" } }]);
  assert.deepEqual(entryRequest(skipEntry(item, "k2", 1)), ["POST", "/api/items/5/skip", { headers: { "Idempotency-Key": "k2" } }]);
});

test("an acknowledged answer leaves the outbox", async () => {
  const srv = server({ status: 201, data: { id: 9 } });
  const { box, settled, timers } = makeOutbox(srv);
  const e = annotateEntry(item, {}, "k1");
  box.add(e);
  assert.deepEqual(box.itemIds(), [5]);
  const r = await box.send(e);
  assert.equal(r.outcome, "ok");
  assert.deepEqual(r.data, { id: 9 });
  assert.equal(box.size, 0);
  assert.deepEqual(settled, [["k1", "ok"]]);
  assert.equal(timers.pending.length, 0);
});

test("entries survive a reload (they live in the store), and adding the same key twice keeps one", () => {
  const srv = server();
  const { box, store } = makeOutbox(srv);
  box.add(annotateEntry(item, {}, "k1"));
  box.add(annotateEntry(item, { v: 2 }, "k1"));
  const again = new Outbox({ store, key: "ob", post: srv.post });
  assert.equal(again.size, 1);
  assert.deepEqual(again.find("k1").body, { v: 2 });
  assert.equal(again.find("nope"), null);
});

test("one request at a time per key: a second send shares the first", async () => {
  let release;
  const gate = new Promise((r) => (release = r));
  const calls = [];
  const { box } = makeOutbox({ post: async (e) => (calls.push(e.key), await gate, { status: 201, data: { id: 1 } }) });
  const e = annotateEntry(item, {}, "k1");
  box.add(e);
  const p1 = box.send(e);
  const p2 = box.send(e);
  assert.equal(p1, p2);
  release();
  await p1;
  assert.deepEqual(calls, ["k1"]);
  // once settled, a new send makes a new request
  box.add(e);
  await box.send(e);
  assert.deepEqual(calls, ["k1", "k1"]);
});

test("offline: the answer is kept and retried with backoff, with the same key, until it is saved", async () => {
  const srv = server({ status: 0, data: null }, { status: 503, data: null }, { status: 201, data: { id: 3 } });
  const { box, timers, settled } = makeOutbox(srv);
  const e = annotateEntry(item, {}, "k1");
  box.add(e);
  assert.equal((await box.send(e)).outcome, "offline");
  assert.equal(box.size, 1);
  assert.deepEqual(timers.pending.map((p) => p.ms), [1000]);
  // a second failure while a retry is scheduled schedules no other one
  box.scheduleRetry();
  assert.equal(timers.pending.length, 1);
  await timers.run(); // retry 1: 503
  assert.equal(box.size, 1);
  assert.deepEqual(timers.pending.map((p) => p.ms), [2000]);
  await timers.run(); // retry 2: saved
  assert.equal(box.size, 0);
  assert.deepEqual(srv.calls, ["k1", "k1", "k1"]);
  assert.deepEqual(settled.map(([, o]) => o), ["offline", "offline", "ok"]);
  // a flush where nothing asked for a retry resets the backoff
  assert.equal(box.backoff.delay, 1000);
});

test("an ended session keeps the answer for later; a refusal drops it", async () => {
  const srv = server({ status: 403, data: { detail: "CSRF Failed" } }, { status: 409, data: { detail: "taken" } }, { status: 400, data: { detail: "bad" } });
  const { box, settled } = makeOutbox(srv);
  const a = annotateEntry(item, {}, "a");
  const b = annotateEntry({ id: 6 }, {}, "b");
  const c = skipEntry({ id: 7 }, "c");
  for (const e of [a, b, c]) box.add(e);
  const results = [await box.send(a), await box.send(b), await box.send(c)];
  assert.deepEqual(results.map((r) => [r.outcome, r.reason]), [["offline", "session"], ["gone", "gone"], ["error", "rejected"]]);
  assert.deepEqual(box.entries().map((e) => e.key), ["a"]);
  assert.deepEqual(settled.map(([k]) => k), ["a", "b", "c"]);
});

test("flush sends every kept entry and reports even when there is none", async () => {
  const flushed = [];
  const srv = server({ status: 201, data: {} }, { status: 204, data: null });
  const { box } = makeOutbox(srv, { onFlushed: (r) => flushed.push(r.length) });
  assert.deepEqual(await box.flush(), []);
  box.add(annotateEntry(item, {}, "a"));
  box.add(skipEntry({ id: 6 }, "b"));
  const results = await box.flush();
  assert.deepEqual(results.map((r) => r.outcome), ["ok", "ok"]);
  assert.equal(box.size, 0);
  assert.deepEqual(flushed, [0, 2]);
});

test("going online resets the backoff and flushes at once", async () => {
  const srv = server({ status: 0 }, { status: 0 }, { status: 201, data: {} });
  const { box, timers } = makeOutbox(srv);
  const e = annotateEntry(item, {}, "k");
  box.add(e);
  await box.send(e);
  await timers.run();
  assert.equal(box.backoff.delay, 4000);
  await box.online();
  assert.equal(box.size, 0);
  assert.equal(box.backoff.delay, 1000);
});

test("a post that throws counts as offline", async () => {
  const { box } = makeOutbox({
    post: async () => {
      throw new Error("boom");
    },
  });
  const e = annotateEntry(item, {}, "k");
  box.add(e);
  assert.equal((await box.send(e)).outcome, "offline");
  assert.equal(box.size, 1);
});

test("onChange fires when entries change", async () => {
  let changes = 0;
  const srv = server({ status: 201, data: {} });
  const { box } = makeOutbox(srv, { onChange: () => changes++ });
  const e = annotateEntry(item, {}, "k");
  box.add(e);
  assert.equal(changes, 1);
  await box.send(e);
  assert.equal(changes, 2);
});
