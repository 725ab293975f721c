import assert from "node:assert/strict";
import { test } from "node:test";

import { errorText } from "../static/frontend/lib/http.js";
import { PREFETCH_MAX_EXCLUDE, Prefetcher, fetchNext, nextUrl } from "../static/frontend/label/prefetch.js";

test("nextUrl: exclude without nulls or repeats, at most five ids", () => {
  assert.equal(nextUrl(3, []), "/api/projects/3/next");
  assert.equal(nextUrl(3, [null, undefined]), "/api/projects/3/next");
  assert.equal(nextUrl(3, [7, null, 7, 8]), "/api/projects/3/next?exclude=7,8");
  assert.equal(PREFETCH_MAX_EXCLUDE, 5);
  assert.equal(nextUrl(3, [1, 2, 3, 4, 5, 6, 7]), "/api/projects/3/next?exclude=1,2,3,4,5");
});

test("fetchNext: an item, none, or an error (fatal when access is refused)", async () => {
  const answering = (status, data) => async () => ({ status, data });
  assert.deepEqual(await fetchNext(answering(200, { id: 1 }), errorText, 3, []), { id: 1 });
  assert.equal(await fetchNext(answering(204, null), errorText, 3, []), null);
  await assert.rejects(
    fetchNext(answering(403, { detail: "Not a member." }), errorText, 3, []),
    (e) => e.fatal && !e.paused && e.message === "Not a member.",
  );
  // the gold auto-pause: a 403 that says paused, told apart so the page can say so in words
  await assert.rejects(
    fetchNext(answering(403, { detail: "You are paused.", errors: [], paused: true }), errorText, 3, []),
    (e) => e.fatal && e.paused && e.message === "You are paused.",
  );
  await assert.rejects(fetchNext(answering(401, null), errorText, 3, []), (e) => e.fatal && e.message === "Not allowed.");
  await assert.rejects(fetchNext(answering(0, null), errorText, 3, []), (e) => !e.fatal);
  await assert.rejects(fetchNext(answering(500, null), errorText, 3, []), (e) => !e.fatal && /500/.test(e.message));
  const urls = [];
  await fetchNext(async (m, url) => (urls.push(url), { status: 204 }), errorText, 9, [1, 2]);
  assert.deepEqual(urls, ["/api/projects/9/next?exclude=1,2"]);
});

function prefetcher(answer) {
  const statuses = [];
  const asked = [];
  const p = new Prefetcher({
    fetchNext: async (exclude) => {
      asked.push(exclude);
      if (answer instanceof Error) throw answer;
      return answer;
    },
    onStatus: (s) => statuses.push(s),
  });
  return { p, statuses, asked };
}

test("the next item is held until taken", async () => {
  const { p, statuses, asked } = prefetcher({ id: 2 });
  await p.run(1, [1, 9]);
  assert.deepEqual(asked, [[1, 9]]);
  assert.deepEqual(statuses, ["pending", "ready"]);
  // while one is held, no other fetch
  await p.run(1, [1]);
  assert.equal(asked.length, 1);
  assert.deepEqual(p.take(), { id: 2 });
  assert.equal(p.take(), null);
  assert.deepEqual(statuses, ["pending", "ready", ""]);
});

test("nothing left: status none, nothing held", async () => {
  const { p, statuses } = prefetcher(null);
  await p.run(1, [1]);
  assert.deepEqual(statuses, ["pending", "none"]);
  assert.equal(p.item, null);
  assert.ok(p.supported);
});

test("a server that ignores ?exclude= turns prefetching off for good", async () => {
  const { p, statuses, asked } = prefetcher({ id: 1 });
  await p.run(1, [1]);
  assert.deepEqual(statuses, ["pending", "off"]);
  assert.equal(p.supported, false);
  await p.run(1, [1]);
  assert.equal(asked.length, 1);
  // an excluded id handed back means the same
  const other = prefetcher({ id: 9 });
  await other.p.run(1, [1, 9]);
  assert.equal(other.p.supported, false);
});

test("an error is ignored (tried again with the next item); the item shown meanwhile is not held", async () => {
  const failing = prefetcher(new Error("offline"));
  await failing.p.run(1, [1]);
  assert.deepEqual(failing.statuses, ["pending"]);
  assert.equal(failing.p.pending, null);
  assert.ok(failing.p.supported);
  const shown = prefetcher({ id: 2 });
  await shown.p.run(1, [1], () => 2);
  assert.equal(shown.p.item, null);
});

test("one fetch at a time; settle waits for it; hold keeps an item fetched elsewhere", async () => {
  let release;
  const gate = new Promise((r) => (release = r));
  let calls = 0;
  const p = new Prefetcher({ fetchNext: async () => (calls++, await gate, { id: 5 }) });
  const first = p.run(1, [1]);
  p.run(1, [1]);
  assert.equal(calls, 1);
  const settled = p.settle();
  release();
  await settled;
  await first;
  assert.deepEqual(p.item, { id: 5 });
  const q = new Prefetcher({ fetchNext: async () => null });
  q.hold({ id: 7 });
  assert.deepEqual(q.take(), { id: 7 });
  await q.settle(); // nothing under way
});
