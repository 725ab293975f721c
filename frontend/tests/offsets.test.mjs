import assert from "node:assert/strict";
import { test } from "node:test";

import { codePointIndex, segments, sliceCodePoints, trimSelection, validRange, wordTokens } from "../static/frontend/lib/offsets.js";

test("codePointIndex maps code points to UTF-16 units and back", () => {
  const text = "a😀b"; // the emoji is one code point, two UTF-16 units
  const idx = codePointIndex(text);
  assert.equal(idx.length, 3);
  assert.deepEqual(idx.cpToU16, [0, 1, 3, 4]);
  assert.deepEqual([...idx.u16ToCp], [0, 1, 1, 2, 3]);
});

test("codePointIndex of an empty text", () => {
  const idx = codePointIndex("");
  assert.equal(idx.length, 0);
  assert.deepEqual(idx.cpToU16, [0]);
  assert.deepEqual([...idx.u16ToCp], [0]);
});

test("sliceCodePoints counts Python characters", () => {
  assert.equal(sliceCodePoints("café 😀 ok", 5, 6), "😀");
  assert.equal(sliceCodePoints("😀😀x", 2, 3), "x");
  assert.equal(sliceCodePoints(null, 0, 2), "");
});

test("validRange wants whole, non-empty offsets inside the text", () => {
  assert.ok(validRange({ start: 0, end: 3 }, 3));
  assert.ok(!validRange({ start: 0, end: 4 }, 3));
  assert.ok(!validRange({ start: 2, end: 2 }, 3));
  assert.ok(!validRange({ start: -1, end: 2 }, 3));
  assert.ok(!validRange({ start: 0.5, end: 2 }, 3));
  assert.ok(!validRange({ start: "0", end: 2 }, 3));
});

test("trimSelection trims whitespace and keeps surrogate pairs whole", () => {
  const text = "  hi 😀 ";
  assert.deepEqual(trimSelection(text, 0, text.length), [2, 7]);
  // a selection ending between the two halves of the emoji grows to include it
  assert.deepEqual(trimSelection(text, 5, 6), [5, 7]);
  // one starting on the low half moves back to the high half
  assert.deepEqual(trimSelection(text, 6, 7), [5, 7]);
  assert.equal(trimSelection(text, 0, 2), null);
  assert.equal(trimSelection("abc", 1, 1), null);
});

test("wordTokens steps over words and single punctuation", () => {
  const text = "Hi, Zoë_2 — ok!";
  const words = wordTokens(text).map(([a, b]) => text.slice(a, b));
  assert.deepEqual(words, ["Hi", ",", "Zoë_2", "—", "ok", "!"]);
  assert.deepEqual(wordTokens(""), []);
});

test("segments cuts at every boundary and lists what covers each piece", () => {
  const outer = { a: 0, b: 10, id: "outer" };
  const inner = { a: 2, b: 5, id: "inner" };
  const pieces = segments(12, [outer, inner]);
  assert.deepEqual(
    pieces.map((p) => [p.a, p.b, p.covering.map((r) => r.id)]),
    [
      [0, 2, ["outer"]],
      [2, 5, ["outer", "inner"]],
      [5, 10, ["outer"]],
      [10, 12, []],
    ],
  );
  assert.deepEqual(segments(3, []).map((p) => [p.a, p.b]), [[0, 3]]);
  // boundaries past the text are ignored
  assert.deepEqual(segments(4, [{ a: 2, b: 9 }]).map((p) => [p.a, p.b]), [[0, 2], [2, 4]]);
});
