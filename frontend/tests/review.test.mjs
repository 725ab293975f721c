import assert from "node:assert/strict";
import { test } from "node:test";

import { correctionValue, startCorrection, toggleLabel, toggleSpan } from "../static/frontend/review/correct.js";
import { reviewKeyAction } from "../static/frontend/review/keys.js";
import {
  adjudicationText,
  conflictText,
  firstCounting,
  leaseText,
  rejectOutcome,
  verdictBlocked,
} from "../static/frontend/review/loop.js";
import { describe, markedPieces } from "../static/frontend/review/render.js";

const ctx = (over = {}) => ({
  helpOpen: false,
  typing: false,
  hasTask: true,
  busy: false,
  correcting: false,
  task: "classification",
  labelKeys: new Set(["1", "p"]),
  onOptionButton: false,
  ...over,
});
const press = (key, c = {}, ev = {}) => reviewKeyAction({ key, ...ev }, ctx(c));

test("review keys: J/K and arrows select, A R C act, / comments, ? helps", () => {
  for (const k of ["j", "J", "ArrowDown", "ArrowRight"]) assert.deepEqual(press(k), { action: "select", arg: 1, prevent: true });
  for (const k of ["k", "ArrowUp", "ArrowLeft"]) assert.deepEqual(press(k), { action: "select", arg: -1, prevent: true });
  assert.equal(press("a").action, "approve");
  assert.equal(press("r").action, "reject");
  assert.equal(press("c").action, "openCorrect");
  assert.equal(press("/").action, "comment");
  assert.equal(press("?").action, "help");
  assert.equal(press("x"), null);
  assert.equal(press("a", {}, { ctrlKey: true }), null);
});

test("review keys: help open, typing, no task or a verdict in flight", () => {
  assert.equal(press("a", { helpOpen: true }), null);
  assert.equal(press("a", { typing: true }), null);
  assert.deepEqual(press("Escape", { typing: true }), { action: "leaveField", prevent: false });
  assert.equal(press("a", { hasTask: false }), null);
  assert.equal(press("a", { busy: true }), null);
  assert.equal(press("?", { busy: true }).action, "help");
});

test("review keys in correct mode", () => {
  assert.deepEqual(press("Escape", { correcting: true }), { action: "closeCorrect", prevent: true });
  assert.deepEqual(press("Enter", { correcting: true, task: "multilabel" }), { action: "saveCorrect", prevent: true });
  assert.deepEqual(press("Enter", { correcting: true, task: "multilabel", onOptionButton: true }), { action: "saveCorrect", prevent: true });
  assert.equal(press("Enter", { correcting: true, onOptionButton: true }), null); // the option's own click
  assert.deepEqual(press("P", { correcting: true }), { action: "pickLabel", arg: "p", prevent: true });
  assert.deepEqual(press("3", { correcting: true, task: "spans" }), { action: "toggleSpan", arg: 2, prevent: true });
  assert.equal(press("1", { correcting: true, task: "spans", labelKeys: new Set(["1"]) }).action, "toggleSpan");
  assert.equal(press("a", { correcting: true }), null);
});

test("corrections start from the annotation and save in the project's label order", () => {
  assert.deepEqual(startCorrection("classification", { label: "x" }), { label: null });
  const m = startCorrection("multilabel", { labels: ["b"] });
  toggleLabel(m, "a");
  toggleLabel(m, "b");
  toggleLabel(m, "c");
  assert.deepEqual(correctionValue("multilabel", ["c", "b", "a"], m), { labels: ["c", "a"] });
  const s = startCorrection("spans", { spans: [{ start: 0, end: 2, label: "X" }, { start: 3, end: 4, label: "Y" }] });
  assert.equal(toggleSpan(s, 0), true);
  assert.equal(toggleSpan(s, 7), false);
  assert.equal(toggleSpan(null, 0), false);
  assert.deepEqual(correctionValue("spans", [], s), { spans: [{ start: 3, end: 4, label: "Y" }] });
});

test("describe and markedPieces (code point offsets)", () => {
  assert.equal(describe("classification", { label: "x" }), "x");
  assert.equal(describe("multilabel", { labels: [] }), "no labels");
  assert.equal(describe("multilabel", { labels: ["a", "b"] }), "a, b");
  assert.equal(describe("spans", { spans: [{ label: "PER", start: 0, end: 5 }] }), "PER 0–5");
  assert.equal(describe("spans", {}), "no spans");
  const pieces = markedPieces("😀 Ann met Bob", [
    { start: 2, end: 5, label: "PER" },
    { start: 2, end: 13, label: "ALL" },
    { start: 10, end: 99, label: "PAST" },
  ]);
  assert.deepEqual(
    pieces.map((p) => [p.text, p.spans.map((s) => s.label)]),
    [
      ["😀 ", []],
      ["Ann", ["PER", "ALL"]],
      [" met Bob", ["ALL"]],
    ],
  );
});

test("the review loop on the page: first counting annotation, blocked verdicts, reject outcome, conflicts, lease", () => {
  const rejected = { annotator: "ann", counts: false };
  const counting = { annotator: "bob", counts: true };
  assert.equal(firstCounting([rejected, counting]), 1);
  assert.equal(firstCounting([counting, rejected]), 0);
  assert.equal(firstCounting([rejected, rejected]), 0);

  const task = { adjudication: false };
  assert.equal(verdictBlocked(task, counting, "approve"), null);
  assert.equal(verdictBlocked(task, counting, "reject"), null);
  assert.match(verdictBlocked(task, rejected, "approve"), /ann's annotation was rejected already/);
  assert.match(verdictBlocked(task, rejected, "reject"), /press C/);
  assert.equal(verdictBlocked(task, rejected, "correct"), null);
  const adjudication = { adjudication: true };
  for (const v of ["approve", "reject"]) assert.match(verdictBlocked(adjudication, counting, v), /awaits adjudication/);
  assert.equal(verdictBlocked(adjudication, rejected, "correct"), null);

  assert.equal(rejectOutcome("x1", { adjudication: false, rejections: 1 }), "Rejected item x1: it goes back to the labeling queue for another annotator.");
  assert.match(rejectOutcome("x1", { adjudication: true, rejections: 2 }), /awaits adjudication \(2 rejections\)/);

  const at = (iso) => "T(" + iso + ")";
  const held = { detail: "Another reviewer ...", errors: [{ field: "item", message: "m", reviewer: "r1", expires_at: "2026-12-07T18:00:00Z" }] };
  assert.equal(conflictText("x1", held, at), "Another reviewer (r1) holds item x1 until T(2026-12-07T18:00:00Z); here is the next one.");
  assert.equal(conflictText("x1", { detail: "This item is not awaiting review.", errors: [{ field: "item", message: "m" }] }, at), "Someone else already decided item x1; here is the next one.");
  assert.equal(conflictText("x1", { detail: "Only a correction.", errors: [{ field: "verdict", message: "m" }] }, at), "Only a correction.");
  assert.equal(conflictText("x1", null, at), "Someone else already decided item x1; here is the next one.");

  assert.equal(leaseText({ expires_at: "2026-12-07T18:00:00Z" }, at), "Held for you until T(2026-12-07T18:00:00Z): no other reviewer is shown this item until then.");
  assert.equal(leaseText({}, at), "");
  assert.equal(leaseText(null, at), "");

  assert.equal(adjudicationText({ rejections: 2 }, 2), "Rejected 2 times (the project's maximum): approve and reject are off; press C to correct it.");
  assert.equal(adjudicationText({ rejections: 1 }, 3), "Rejected 1 time (nobody is left to label it): approve and reject are off; press C to correct it.");
});
