import assert from "node:assert/strict";
import { test } from "node:test";

import { errorOf } from "../static/frontend/manage/errors.js";
import { jobFinished, jobText } from "../static/frontend/manage/import.js";
import { PALETTE, labelsPayload, moveRow, newRow, rowsFrom } from "../static/frontend/manage/labels.js";

test("label rows from the API, and back", () => {
  assert.deepEqual(rowsFrom([]), [{ name: "", hotkey: "", color: "" }]);
  assert.deepEqual(rowsFrom(undefined), [{ name: "", hotkey: "", color: "" }]);
  assert.deepEqual(rowsFrom([{ name: "a", hotkey: "1" }]), [{ name: "a", hotkey: "1", color: "" }]);
  assert.deepEqual(labelsPayload([{ name: " a ", hotkey: "", color: "#fff" }, { name: "b", hotkey: "2", color: "" }]), [
    { name: "a", color: "#fff" },
    { name: "b", hotkey: "2" },
  ]);
  assert.deepEqual(newRow(11), { name: "", hotkey: "", color: PALETTE[1] });
});

test("moving a row keeps the focus on its arrow, or the other arrow at an edge", () => {
  const rows = ["a", "b", "c"];
  assert.deepEqual(moveRow(rows, 2, -1), [1, "up"]);
  assert.deepEqual(rows, ["a", "c", "b"]);
  assert.deepEqual(moveRow(rows, 1, -1), [0, "down"]); // reached the top: ↑ is disabled now
  assert.deepEqual(moveRow(rows, 0, 1), [1, "down"]);
  assert.deepEqual(moveRow(rows, 1, 1), [2, "up"]); // reached the bottom
  assert.deepEqual(rows, ["a", "b", "c"]);
});

test("import progress text", () => {
  assert.equal(jobText({ status: "queued" }), "Waiting for a worker…");
  assert.equal(jobText({ status: "running", progress: 150, total: 300 }), "Importing… 50%");
  assert.equal(jobText({ status: "running", progress: 400, total: 300 }), "Importing… 100%");
  assert.equal(jobText({ status: "running", progress: 5, total: 0 }), "Importing… 0%");
  assert.equal(jobText({ status: "succeeded" }), "Done.");
  assert.equal(jobText({ status: "failed", error: "bad file" }), "The import failed: bad file. Nothing was imported.");
  assert.equal(jobText({ status: "failed" }), "The import failed: see the rows below. Nothing was imported.");
  assert.ok(jobFinished({ status: "failed" }) && jobFinished({ status: "succeeded" }) && !jobFinished({ status: "running" }));
});

test("errorOf: the API's error, or what went wrong on the way", () => {
  const err = { detail: "Invalid input.", errors: [] };
  assert.equal(errorOf({ status: 400, data: err }), err);
  assert.match(errorOf({ status: 0, data: null }).detail, /could not be reached/);
  assert.equal(errorOf({ status: 502, data: null }).detail, "Unexpected answer (HTTP 502).");
});
