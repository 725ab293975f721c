import assert from "node:assert/strict";
import { test } from "node:test";

import { keyAction } from "../static/frontend/label/keys.js";

const hotkeys = new Map([
  ["1", "sports"],
  ["p", "politics"],
]);
const ctx = (over = {}) => ({ helpOpen: false, hasItem: true, editing: false, task: "classification", hotkeys, spanCount: 0, ...over });
const press = (key, over = {}, target = {}, c = {}) => keyAction({ key, ...over }, target, ctx(c));

test("label hotkeys, case-insensitive, before the page's own letters", () => {
  assert.deepEqual(press("1"), { action: "label", arg: "sports", prevent: true });
  assert.deepEqual(press("P"), { action: "label", arg: "politics", prevent: true });
  const withS = new Map([["s", "spam"]]);
  assert.deepEqual(keyAction({ key: "s" }, {}, ctx({ hotkeys: withS })), { action: "label", arg: "spam", prevent: true });
});

test("S skip, U undo, R reasons, G guidelines, ? help, Enter submit", () => {
  assert.equal(press("s").action, "skip");
  assert.equal(press("U").action, "undo");
  assert.equal(press("r").action, "reasons");
  assert.equal(press("g").action, "guidelines");
  assert.deepEqual(press("?"), { action: "help", prevent: true });
  assert.deepEqual(press("Enter"), { action: "submit", prevent: true });
  assert.equal(press("x"), null);
});

test("modifiers, composition, typing and handled events are left alone", () => {
  for (const mod of ["ctrlKey", "metaKey", "altKey", "isComposing", "defaultPrevented"]) assert.equal(press("s", { [mod]: true }), null);
  assert.equal(press("s", {}, { typing: true }), null);
  assert.equal(press("?", {}, { typing: true }), null);
});

test("while help is open only ? acts (Escape is the dialog's)", () => {
  assert.deepEqual(press("?", {}, {}, { helpOpen: true }), { action: "help", prevent: true });
  assert.equal(press("s", {}, {}, { helpOpen: true }), null);
  assert.equal(press("Escape", {}, {}, { helpOpen: true }), null);
});

test("without an item only help works", () => {
  assert.equal(press("s", {}, {}, { hasItem: false }), null);
  assert.equal(press("Enter", {}, {}, { hasItem: false }), null);
  assert.equal(press("?", {}, {}, { hasItem: false }).action, "help");
});

test("a focused control keeps its own Enter", () => {
  assert.equal(press("Enter", {}, { ownEnter: true }), null);
  assert.equal(press("Enter", {}, { ownEnter: false }).action, "submit");
});

test("Escape cancels an edit, else clears the selection, and never prevents the default", () => {
  assert.deepEqual(press("Escape", {}, {}, { editing: true }), { action: "cancelEdit", prevent: false });
  assert.deepEqual(press("Escape"), { action: "clearSelection", prevent: false });
});

test("span tasks: arrows move (Shift selects) outside the controls; Backspace removes a span", () => {
  const spans = { task: "spans", spanCount: 3 };
  assert.deepEqual(press("ArrowRight", {}, {}, spans), { action: "move", arg: { dir: 1, extend: false }, prevent: true });
  assert.deepEqual(press("ArrowLeft", { shiftKey: true }, {}, spans), { action: "move", arg: { dir: -1, extend: true }, prevent: true });
  assert.equal(press("ArrowRight", {}, { inControls: true }, spans), null);
  assert.deepEqual(press("Backspace", {}, { chip: 1 }, spans), { action: "removeSpan", arg: 1, prevent: true });
  assert.deepEqual(press("Delete", {}, { chip: 0 }, spans), { action: "removeSpan", arg: 0, prevent: true });
  assert.deepEqual(press("Backspace", {}, { chip: null }, spans), { action: "removeSpan", arg: 2, prevent: true });
  assert.deepEqual(press("Backspace", {}, {}, { task: "spans", spanCount: 0 }), { action: "none", prevent: true });
  // other tasks leave arrows and Backspace alone
  assert.equal(press("ArrowRight"), null);
  assert.equal(press("Backspace"), null);
});
