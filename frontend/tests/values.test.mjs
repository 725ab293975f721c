import assert from "node:assert/strict";
import { test } from "node:test";

import {
  canonical,
  confidenceOf,
  emptyValue,
  isComplete,
  isZeroShot,
  makeSchema,
  pct,
  preselectOf,
  sameValue,
  suggestionOf,
  suggestionSource,
  suggestionText,
  withLabel,
  withSpan,
  withoutSpan,
} from "../static/frontend/label/values.js";

const labels = [
  { name: "sports", hotkey: "1", color: "#ff0000" },
  { name: "politics", hotkey: "P", color: "red; background: url(x)" },
  { name: "tech" },
];
const schema = (taskType) => makeSchema({ taskType, labels });

test("makeSchema: label order, lower-case hotkeys, only hex colors", () => {
  const s = schema("multilabel");
  assert.deepEqual([...s.order], [["sports", 0], ["politics", 1], ["tech", 2]]);
  assert.deepEqual([...s.hotkeys], [["1", "sports"], ["p", "politics"]]);
  assert.equal(s.colors.get("sports"), "#ff0000");
  assert.equal(s.colors.get("politics"), "#6b7280");
  assert.equal(s.colors.get("tech"), "#6b7280");
});

test("emptyValue and isComplete per task", () => {
  assert.deepEqual(emptyValue(schema("classification")), { label: null });
  assert.deepEqual(emptyValue(schema("multilabel")), { labels: [] });
  assert.deepEqual(emptyValue(schema("spans")), { spans: [] });
  assert.equal(isComplete(schema("classification"), { label: null }), false);
  assert.equal(isComplete(schema("classification"), { label: "tech" }), true);
  assert.equal(isComplete(schema("multilabel"), { labels: [] }), true);
  assert.equal(isComplete(schema("spans"), { spans: [] }), true);
});

test("canonical: known labels, no repeats, in order", () => {
  assert.deepEqual(canonical(schema("multilabel"), { labels: ["tech", "nope", "sports", "tech"] }), { labels: ["sports", "tech"] });
  assert.deepEqual(
    canonical(schema("spans"), {
      spans: [
        { start: 5, end: 9, label: "tech" },
        { start: 0, end: 4, label: "sports", extra: 1 },
        { start: 0, end: 4, label: "sports" },
        { start: 0, end: 2, label: "nope" },
        { start: 0, end: 4, label: "politics" },
      ],
    }),
    {
      spans: [
        { start: 0, end: 4, label: "politics" },
        { start: 0, end: 4, label: "sports" },
        { start: 5, end: 9, label: "tech" },
      ],
    },
  );
  assert.deepEqual(canonical(schema("classification"), {}), { label: null });
  assert.equal(canonical(schema("classification"), null), null);
});

test("sameValue compares canonical forms", () => {
  const s = schema("multilabel");
  assert.ok(sameValue(s, { labels: ["tech", "sports"] }, { labels: ["sports", "tech", "tech"] }));
  assert.ok(!sameValue(s, { labels: ["tech"] }, { labels: ["sports"] }));
});

test("suggestionOf keeps a usable prediction only", () => {
  const c = schema("classification");
  assert.equal(suggestionOf(c, { data: {}, prediction: null }), null);
  assert.equal(suggestionOf(c, { data: {}, prediction: { value: "tech" } }), null);
  assert.equal(suggestionOf(c, { data: {}, prediction: { value: { label: "unknown" } } }), null);
  assert.deepEqual(suggestionOf(c, { data: {}, prediction: { value: { label: "tech" } } }), { label: "tech" });
  // spans outside the text (counted in code points) are dropped
  const s = schema("spans");
  const item = {
    data: { text: "😀 goal" }, // 6 code points
    prediction: {
      value: {
        spans: [
          { start: 2, end: 6, label: "sports" },
          { start: 2, end: 7, label: "sports" },
          { start: 3, end: 3, label: "tech" },
        ],
      },
    },
  };
  assert.deepEqual(suggestionOf(s, item), { spans: [{ start: 2, end: 6, label: "sports" }] });
});

test("confidence and its text", () => {
  const item = { prediction: { probabilities: { tech: 0.874, sports: 0.1 } } };
  assert.equal(confidenceOf(item, "tech"), 0.874);
  assert.equal(confidenceOf(item, "politics"), null);
  assert.equal(confidenceOf({}, "tech"), null);
  assert.equal(pct(0.874), "87%");
  // a prediction without `kind` predates it: zero-shot, whose probabilities are an uncalibrated score
  assert.equal(suggestionText(schema("classification"), item, { label: "tech" }), "tech (score 87%, uncalibrated)");
  const trained = { prediction: { ...item.prediction, kind: "fine_tuned" } };
  assert.equal(suggestionText(schema("classification"), trained, { label: "tech" }), "tech (87% confident)");
  assert.equal(suggestionText(schema("multilabel"), item, { labels: ["sports", "politics"] }), "sports (10%), politics");
  assert.equal(suggestionText(schema("multilabel"), item, { labels: [] }), "none of the labels");
  assert.equal(suggestionText(schema("spans"), item, { spans: [{}] }), "1 span, pre-filled below");
  assert.equal(suggestionText(schema("spans"), item, { spans: [{}, {}] }), "2 spans, pre-filled below");
});

test("editing: choose, toggle, add and remove spans", () => {
  assert.deepEqual(withLabel(schema("classification"), { label: "tech" }, "sports"), { label: "sports" });
  const m = schema("multilabel");
  assert.deepEqual(withLabel(m, { labels: ["tech"] }, "sports"), { labels: ["tech", "sports"] });
  assert.deepEqual(withLabel(m, { labels: ["tech", "sports"] }, "tech"), { labels: ["sports"] });
  const v = { spans: [{ start: 0, end: 2, label: "tech" }] };
  assert.equal(withSpan(v, { start: 0, end: 2, label: "tech" }), v);
  const v2 = withSpan(v, { start: 3, end: 5, label: "sports" });
  assert.equal(v2.spans.length, 2);
  assert.equal(v.spans.length, 1); // not changed in place
  const [v3, gone] = withoutSpan(v2, 0);
  assert.deepEqual(v3, { spans: [{ start: 3, end: 5, label: "sports" }] });
  assert.deepEqual(gone, { start: 0, end: 2, label: "tech" });
  assert.equal(withoutSpan(v2, 5)[1], undefined);
});

test("pre-selection: only when the server says so", () => {
  assert.equal(preselectOf({ prediction: { preselect: true } }), true);
  assert.equal(preselectOf({ prediction: { preselect: false } }), false);
  assert.equal(preselectOf({ prediction: { value: { label: "tech" } } }), false); // an older server: never
  assert.equal(preselectOf({ prediction: null }), false);
  assert.equal(preselectOf(null), false);
});

test("which model suggested it", () => {
  assert.equal(isZeroShot({ prediction: { kind: "zero_shot" } }), true);
  assert.equal(isZeroShot({ prediction: {} }), true);
  assert.equal(isZeroShot({ prediction: { kind: "fine_tuned" } }), false);
  assert.equal(suggestionSource({ prediction: { model_version: 3, kind: "fine_tuned" } }), "model version 3, fine-tuned");
  assert.equal(suggestionSource({ prediction: { model_version: 1 } }), "model version 1, zero-shot");
  assert.equal(suggestionSource({ prediction: null }), "");
});

test("spans not pre-filled are listed with their text", () => {
  const item = { data: { text: "Ann met Bob in Oslo 🙂 yesterday" }, prediction: {} };
  const sug = { spans: [{ start: 0, end: 3, label: "sports" }, { start: 15, end: 21, label: "tech" }] };
  assert.equal(suggestionText(schema("spans"), item, sug, { preselected: true }), "2 spans, pre-filled below");
  assert.equal(suggestionText(schema("spans"), item, sug, { preselected: false }), "2 spans: sports “Ann”, tech “Oslo 🙂”");
  const many = { spans: Array.from({ length: 6 }, (_, i) => ({ start: i, end: i + 1, label: "tech" })) };
  assert.match(suggestionText(schema("spans"), item, many, { preselected: false }), /^6 spans: (tech “.”, ){4}tech “.”, …$/);
  assert.equal(suggestionText(schema("spans"), item, { spans: [] }, { preselected: false }), "0 spans");
});
