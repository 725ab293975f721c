import assert from "node:assert/strict";
import { test } from "node:test";

import { KeyboardSelection, selectedTokens, stepSelection } from "../static/frontend/label/spans.js";
import { textPieces } from "../static/frontend/label/render.js";
import { reasonRanges } from "../static/frontend/label/reasons.js";
import { codePointIndex } from "../static/frontend/lib/offsets.js";

test("stepSelection: the first step picks an end, then moves or extends, clamped", () => {
  assert.deepEqual(stepSelection(null, 1, false, 4), { anchor: 0, focus: 0 });
  assert.deepEqual(stepSelection(null, -1, true, 4), { anchor: 3, focus: 3 });
  assert.deepEqual(stepSelection({ anchor: 0, focus: 0 }, 1, false, 4), { anchor: 1, focus: 1 });
  assert.deepEqual(stepSelection({ anchor: 1, focus: 1 }, 1, true, 4), { anchor: 1, focus: 2 });
  assert.deepEqual(stepSelection({ anchor: 1, focus: 3 }, 1, true, 4), { anchor: 1, focus: 3 });
  assert.deepEqual(stepSelection({ anchor: 1, focus: 0 }, -1, true, 4), { anchor: 1, focus: 0 });
  assert.deepEqual(selectedTokens({ anchor: 2, focus: 0 }), [0, 2]);
});

test("KeyboardSelection walks words and punctuation of the text, in UTF-16 units", () => {
  const text = "Paris, 😀 café";
  const sel = new KeyboardSelection(text);
  const pick = (r) => text.slice(r[0], r[1]);
  assert.equal(pick(sel.step(1, false)), "Paris");
  assert.equal(pick(sel.step(1, true)), "Paris,");
  assert.equal(pick(sel.step(1, false)), "😀");
  assert.equal(pick(sel.step(1, true)), "😀 café");
  sel.collapse();
  assert.deepEqual(sel.kb, { anchor: 3, focus: 3 });
  sel.clear();
  assert.equal(pick(sel.step(-1, false)), "café");
  assert.equal(new KeyboardSelection("   ").step(1, false), null);
});

test("textPieces: nested spans outermost first, reasons by their strongest weight", () => {
  const text = "😀 Paris Saint";
  const idx = codePointIndex(text);
  // code points: 😀 0, space 1, Paris 2–7, space 7, Saint 8–13; reasons are already in UTF-16 units
  const spans = [
    { start: 2, end: 13, label: "ORG" },
    { start: 2, end: 7, label: "LOC" },
  ];
  const reasons = [{ a: 3, b: 8, w: 0.5 }, { a: 3, b: 5, w: 1 }];
  const pieces = textPieces(text, idx, spans, reasons).map((p) => [text.slice(p.a, p.b), p.spans.map((s) => `${s.label}#${s.i}`), p.w]);
  assert.deepEqual(pieces, [
    ["😀 ", [], 0],
    ["Pa", ["ORG#0", "LOC#1"], 1],
    ["ris", ["ORG#0", "LOC#1"], 0.5],
    [" Saint", ["ORG#0"], 0],
  ]);
  assert.deepEqual(textPieces("abc", codePointIndex("abc"), [], []).map((p) => [p.a, p.b]), [[0, 3]]);
});

test("reasonRanges: weights relative to the strongest, bad tokens dropped, offsets to UTF-16", () => {
  const text = "😀 goal and striker";
  const idx = codePointIndex(text);
  const tokens = [
    { start: 2, end: 6, weight: 0.8 },
    { start: 11, end: 18, weight: 0.4 },
    { start: 7, end: 10, weight: -0.3 },
    { start: 5, end: 99, weight: 1 }, // past the end: dropped (its weight still counts as the maximum)
    { start: "2", end: 6, weight: 0.1 },
  ];
  const ranges = reasonRanges(tokens, idx);
  assert.deepEqual(
    ranges.map((r) => [text.slice(r.a, r.b), r.w]),
    [
      ["goal", 0.8],
      ["striker", 0.4],
      ["and", 0],
    ],
  );
  assert.deepEqual(reasonRanges([{ start: 0, end: 1, weight: 0 }], idx), [{ a: 0, b: 2, w: 0 }]);
});
