// The snapshot page's pure parts: the request body from the form, the split hint, where an API error shows,
// and the words and numbers of a snapshot's card.
import assert from "node:assert/strict";
import { test } from "node:test";

import { errorTarget, metaValue, numberOf, parseList, snapshotBody, splitSum, splitSumText } from "../static/frontend/snapshots/body.js";
import {
  agreementText,
  distributionText,
  downloadUrl,
  filtersText,
  formatsFor,
  jobFinished,
  modelText,
  pollDelay,
  progressText,
  shortSha,
  sizeText,
  splitText,
  splitsText,
  timeText,
} from "../static/frontend/snapshots/list.js";

// the form as it loads: approved checked, split 0.8/0.1/0.1 seed 0, stratified, everything else empty
const DEFAULTS = {
  name: "",
  status: ["approved"],
  source: [],
  labels: [],
  min_agreement: "",
  annotators: "",
  created_after: "",
  created_before: "",
  decided_after: "",
  decided_before: "",
  meta: [],
  gold: "include",
  train: "0.8",
  validation: "0.1",
  test: "0.1",
  seed: "0",
  stratify: true,
  group_by: "",
  pseudonymize: false,
};

test("an untouched form sends the name, the status, the split and nothing else", () => {
  assert.deepEqual(snapshotBody({ ...DEFAULTS, name: "  v1 " }), {
    name: "v1",
    filters: { status: ["approved"] },
    split: { train: 0.8, validation: 0.1, test: 0.1, seed: 0, stratify: true },
    pseudonymize: false,
  });
});

test("every filter the user set is sent in the API's shape", () => {
  const body = snapshotBody({
    ...DEFAULTS,
    name: "curated",
    status: ["approved", "in_review"],
    source: ["review", "adjudication"],
    labels: ["tech"],
    min_agreement: "0.75",
    annotators: " alice, bob ,,alice ",
    created_after: "2026-01-01",
    decided_before: "2026-12-31",
    meta: [
      { field: " lang ", value: "en" },
      { field: "", value: "ignored: no field" },
      { field: "source", value: "" },
      { field: "year", value: "2024" },
      { field: "code", value: '"007"' },
    ],
    gold: "exclude",
    train: "0.7",
    validation: "0.2",
    test: "0.1",
    seed: "42",
    stratify: false,
    group_by: " url ",
    pseudonymize: true,
  });
  assert.deepEqual(body, {
    name: "curated",
    filters: {
      status: ["approved", "in_review"],
      source: ["review", "adjudication"],
      labels: ["tech"],
      min_agreement: 0.75,
      annotators: ["alice", "bob"],
      created_after: "2026-01-01",
      decided_before: "2026-12-31",
      meta: { lang: "en", source: "", year: 2024, code: "007" },
      gold: "exclude",
    },
    split: { train: 0.7, validation: 0.2, test: 0.1, seed: 42, stratify: false, group_by: "url" },
    pseudonymize: true,
  });
});

test("no status checked is sent as it is (the API says what is wrong), an empty number is left out", () => {
  const body = snapshotBody({ ...DEFAULTS, status: [], seed: "", min_agreement: "  " });
  assert.deepEqual(body.filters, { status: [] });
  assert.deepEqual(body.split, { train: 0.8, validation: 0.1, test: 0.1, stratify: true });
});

test("metadata values: JSON numbers, booleans and null as such, the rest (or quoted) as text", () => {
  assert.equal(metaValue("en"), "en");
  assert.equal(metaValue(" 42 "), 42);
  assert.equal(metaValue("-1.5e3"), -1500);
  assert.equal(metaValue("007"), "007"); // not a JSON number
  assert.equal(metaValue('"42"'), "42");
  assert.equal(metaValue('""'), "");
  assert.equal(metaValue("true"), true);
  assert.equal(metaValue("false"), false);
  assert.equal(metaValue("null"), null);
  assert.equal(metaValue(""), "");
  assert.equal(metaValue("1,5"), "1,5");
});

test("lists and numbers from text", () => {
  assert.deepEqual(parseList(""), []);
  assert.deepEqual(parseList(undefined), []);
  assert.deepEqual(parseList("a,b , a"), ["a", "b"]);
  assert.equal(numberOf(""), undefined);
  assert.equal(numberOf(" 0 "), 0);
  assert.ok(Number.isNaN(numberOf("x")));
});

test("the split's sum hint", () => {
  assert.equal(splitSum({ train: "0.7", validation: "0.2", test: "0.1" }), 1); // not 0.9999999999999999
  assert.deepEqual(splitSumText(DEFAULTS), { ok: true, text: "Sums to 1." });
  assert.deepEqual(splitSumText({ train: "0.8", validation: "0.1", test: "0.2" }), {
    ok: false,
    text: "Sums to 1.1: train, validation and test must sum to 1.",
  });
  assert.deepEqual(splitSumText({ train: "0.8", validation: "", test: "0.2" }), {
    ok: false,
    text: "Give train, validation and test a number each.",
  });
});

test("an API error shows at its field, or the nearest enclosing one, or only in the summary", () => {
  const known = new Set(["name", "filters.status", "filters.meta", "filters.min_agreement", "split", "split.train"]);
  assert.equal(errorTarget("filters.min_agreement", known), "filters.min_agreement");
  assert.equal(errorTarget("split.train", known), "split.train");
  assert.equal(errorTarget("split.validation", known), "split");
  assert.equal(errorTarget("filters.meta.lang", known), "filters.meta");
  assert.equal(errorTarget("filters.status[1]", known), "filters.status");
  assert.equal(errorTarget("filters.foo", known), null);
  assert.equal(errorTarget("format", known), null);
  assert.equal(errorTarget(null, known), null);
  assert.equal(errorTarget("name", ["name"]), "name");
});

test("download formats: CoNLL only for span projects", () => {
  const names = (t) => formatsFor(t).map((f) => f.format);
  assert.deepEqual(names("classification"), ["jsonl", "csv", "parquet", "hf", "labelstudio", "card"]);
  assert.deepEqual(names("multilabel"), ["jsonl", "csv", "parquet", "hf", "labelstudio", "card"]);
  assert.deepEqual(names("spans"), ["jsonl", "csv", "parquet", "hf", "conll", "labelstudio", "card"]);
  assert.equal(downloadUrl(7, "hf"), "/api/snapshots/7/download?format=hf");
});

test("a snapshot's card in words", () => {
  assert.equal(shortSha("0123456789abcdef0123"), "0123456789ab");
  assert.equal(shortSha(""), "–");
  assert.equal(splitsText({ test: 1, train: 8, validation: 1 }), "train 8 · validation 1 · test 1");
  assert.equal(splitsText({ train: 0 }), "train 0");
  assert.equal(splitsText({}), "–");
  assert.equal(sizeText(512), "512 B");
  assert.equal(sizeText(12_345), "12.3 kB");
  assert.equal(sizeText(456_000_000), "456 MB");
  assert.equal(sizeText(undefined), "");
  assert.equal(timeText("2026-12-07T21:15:09.123456Z"), "2026-12-07 21:15 UTC");
  assert.equal(timeText("2026-12-07T22:15:09+01:00"), "2026-12-07 21:15 UTC");
  assert.equal(timeText(null), "–");
  assert.equal(distributionText({ sports: 0, politics: 2, tech: 5 }), "politics 2 · tech 5");
  assert.equal(distributionText({ sports: 0 }), "–");
  assert.equal(distributionText(undefined), "–");
  assert.equal(
    agreementText({ items: 4, mean_item_agreement: 0.9333333, krippendorff_alpha: 0.8123 }),
    "93.3 % mean item agreement · Krippendorff's α 0.812",
  );
  assert.equal(agreementText({ items: 0, mean_item_agreement: null, krippendorff_alpha: null }), "–");
  assert.equal(agreementText(null), "–");
  assert.equal(modelText(3), "v3");
  assert.equal(modelText(null), "none");
  assert.equal(
    filtersText({
      status: ["approved"],
      source: [],
      min_agreement: null,
      labels: ["tech", "sports"],
      meta: { lang: "en" },
      gold: "include",
      created_after: null,
    }),
    "status approved; labels tech, sports; meta lang = en",
  );
  assert.equal(filtersText({ gold: "only", status: [] }), "gold only");
  assert.equal(filtersText({}), "none");
  assert.equal(
    splitText({ train: 0.8, validation: 0.1, test: 0.1, seed: 0, stratify: true, group_by: "url" }),
    "0.8 / 0.1 / 0.1, seed 0, stratified, grouped by url",
  );
  assert.equal(splitText({ train: 1, validation: 0, test: 0, seed: 3, stratify: false }), "1 / 0 / 0, seed 3");
  assert.equal(splitText({}), "–");
});

test("build progress and the polling pace", () => {
  assert.equal(progressText({ status: "queued" }), "Waiting for a worker…");
  assert.equal(progressText({ status: "running", progress: 0, total: 0 }), "Building…");
  assert.equal(progressText({ status: "running", progress: 400, total: 1000 }), "Building… 40% (400 of 1000)");
  assert.equal(progressText({ status: "running", progress: 1200, total: 1000 }), "Building… 100% (1000 of 1000)");
  assert.equal(progressText({ status: "failed", error: "disk full" }), "The build failed: disk full");
  assert.ok(jobFinished({ status: "failed" }) && jobFinished({ status: "succeeded" }));
  assert.ok(!jobFinished({ status: "running" }) && !jobFinished(null));
  assert.equal(pollDelay(0), 1000);
  assert.equal(pollDelay(9), 1000);
  assert.ok(pollDelay(10) > 1000 && pollDelay(11) > pollDelay(10));
  assert.equal(pollDelay(100), 10_000);
});
