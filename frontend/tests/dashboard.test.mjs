// The dashboard's pure modules against a metrics answer shaped as issue 13's contract.
import assert from "node:assert/strict";
import { test } from "node:test";

import { pausedMap, pausedText } from "../static/frontend/dashboard/annotators.js";
import {
  FLAGGED_FILL,
  agreementChart,
  goldChart,
  learningCurveChart,
  liveChart,
  perLabelF1Chart,
  reliabilityChart,
  sliceChart,
  stoppingChart,
  throughputChart,
} from "../static/frontend/dashboard/charts.js";
import { csvName, csvSafe, tableCsv, toCsv } from "../static/frontend/dashboard/csv.js";
import { EMPTY, emptyStates } from "../static/frontend/dashboard/empty.js";
import { NONE, coef, count, interval, pct, seconds, withInterval } from "../static/frontend/dashboard/format.js";
import { metricsUrl, rangeFrom, rangeText } from "../static/frontend/dashboard/range.js";
import {
  agreementPairs,
  agreementPerLabel,
  annotatorsTable,
  confusionOf,
  confusionTable,
  isFlagged,
  liveTable,
  modelTable,
  perLabelF1Table,
  sliceFlagSentences,
  sliceTable,
  stoppingTable,
} from "../static/frontend/dashboard/tables.js";

const METRICS = {
  computed_at: "2026-12-07T10:00:00Z",
  agreement: {
    krippendorff_alpha: 0.6,
    fleiss_kappa: 0.55,
    pairwise_cohen_kappa: [{ a: "ann", b: "bob", kappa: -0.25, n: 8 }],
    per_label: { spam: { krippendorff_alpha: 0.7 }, ham: { krippendorff_alpha: null } },
    n_items: 8,
    over_time: [
      { day: "2026-12-05", krippendorff_alpha: 0.5, n_items: 4 },
      { day: "2026-12-06", krippendorff_alpha: null, n_items: 1 },
    ],
  },
  annotators: [
    {
      username: "ann", annotations: 10, per_hour: 42.5, median_lead_time_ms: 4200, gold_answers: 4, gold_accuracy: 0.75,
      paused: false, agreement_with_final: 0.9, suggestion_accepted_rate: 0.5, wrong_suggestion_accepted_rate: 0.25,
    },
    {
      username: "=HYPERLINK(1)", annotations: 3, per_hour: null, median_lead_time_ms: null, gold_answers: 0,
      gold_accuracy: null, paused: true, agreement_with_final: null, suggestion_accepted_rate: null,
      wrong_suggestion_accepted_rate: null,
    },
  ],
  throughput: [{ day: "2026-12-05", annotations: 12, reviews: 0 }],
  model: [
    {
      model_version: 1, status: "retired", accuracy: 0.6, macro_f1: 0.55, ece: 0.2, per_label_f1: { spam: 0.5, ham: 0.6 },
      confusion: { labels: ["spam", "ham"], matrix: [[3, 2], [1, 4]] },
      reliability: [{ bin: 0, confidence: 0.55, accuracy: 0.5, n: 4 }, { bin: 1, confidence: 0.9, accuracy: null, n: 0 }],
    },
    {
      model_version: 2, status: "active", accuracy: 0.8, macro_f1: 0.79, ece: 0.05, per_label_f1: { spam: 0.8, other: 0.7 },
      confusion: [[4, 1], [1, 4]], reliability: [{ bin: 1, confidence: 0.85, accuracy: 0.8, n: 10 }],
    },
  ],
  live: {
    model_version: 2,
    gold: { n: 10, accuracy: 0.7, ci: [0.4, 0.89] },
    final: { n: 50, accuracy: 0.92, ci: [0.81, 0.97] },
  },
  learning_curve: [{ model_version: 2, n_train: 80, accuracy: 0.8 }, { model_version: 1, n_train: 0, accuracy: 0.6 }],
  slices: {
    source: {
      truncated: true,
      rows: [
        {
          value: "web", n: 30, agreement: 0.2, agreement_ci: [0.05, 0.35], gold_accuracy: 0.4, gold_ci: [0.2, 0.6],
          model_accuracy: null, model_ci: [null, null], flagged: ["gold_accuracy", "agreement"],
        },
        {
          value: "-sms", n: 5, agreement: null, agreement_ci: [null, null], gold_accuracy: 0.9, gold_ci: [0.6, 0.98],
          model_accuracy: 0.8, model_ci: [0.4, 0.96], flagged: [],
        },
      ],
    },
  },
  stopping: {
    kappa_history: [{ model_version: 2, kappa: 0.97 }],
    stable: false,
    sample_size: 1000,
    sentence: "the last 2 versions agree on 97 % of a 1,000-item sample",
  },
};

const EMPTY_METRICS = {
  computed_at: null,
  agreement: { krippendorff_alpha: null, fleiss_kappa: null, pairwise_cohen_kappa: [], per_label: {}, n_items: 0, over_time: [] },
  annotators: [],
  throughput: [],
  model: [],
  live: { model_version: null, gold: { n: 0, accuracy: null, ci: [null, null] }, final: { n: 0, accuracy: null, ci: [null, null] } },
  learning_curve: [],
  slices: {},
  stopping: { kappa_history: [], stable: false, sample_size: 0, sentence: "" },
};

test("numbers: missing figures read —, never 0; a real 0 is a number", () => {
  assert.equal(pct(null), NONE);
  assert.equal(pct(undefined), NONE);
  assert.equal(pct(0), "0.0 %");
  assert.equal(pct(0.875), "87.5 %");
  assert.equal(coef(-0.25), "-0.250");
  assert.equal(count(12345), "12,345");
  assert.equal(seconds(4200), "4.2 s");
  assert.equal(interval([0.4, 0.89]), "40.0 % – 89.0 %");
  assert.equal(interval([null, null]), NONE);
  assert.equal(withInterval(0.7, [0.4, 0.89]), "70.0 % (40.0 % – 89.0 %)");
  assert.equal(withInterval(0.7, [null, null]), "70.0 %");
  assert.equal(withInterval(null, [0.1, 0.2]), NONE);
});

test("CSV cells: a formula start gets a leading ', as the export's csv_safe; numbers stay numbers", () => {
  for (const start of ["=", "+", "-", "@", "\t", "\r"]) assert.equal(csvSafe(`${start}x`), `'${start}x`);
  assert.equal(csvSafe("a=b"), "a=b");
  assert.equal(csvSafe(-0.25), "-0.25");
  assert.equal(csvSafe(null), "");
  assert.equal(csvSafe(Number.NaN), "");
  assert.equal(csvSafe(true), "true");
  assert.equal(toCsv(["a", "b"], [["x,y", 'say "hi"'], ["line\nbreak", null]]), 'a,b\r\n"x,y","say ""hi"""\r\n"line\nbreak",\r\n');
  assert.equal(csvName("project", 7, "slice-source/x y"), "project-7-slice-source-x-y.csv");
});

test("the annotators table: every contract column, raw values in the CSV, the fresher pause state", () => {
  const spec = annotatorsTable(METRICS.annotators);
  assert.deepEqual(
    spec.columns.map((c) => c.label),
    [
      "Annotator", "Annotations", "Per hour (active)", "Median lead time", "Gold answers", "Gold accuracy",
      "Agreement with final", "Suggestion accepted", "Wrong suggestion accepted", "Status",
    ],
  );
  assert.deepEqual(
    spec.columns.map((c) => c.text(METRICS.annotators[0])),
    ["ann", "10", "42.5", "4.2 s", "4", "75.0 %", "90.0 %", "50.0 %", "25.0 %", "active"],
  );
  assert.deepEqual(
    spec.columns.map((c) => c.text(METRICS.annotators[1])).slice(2, 4),
    [NONE, NONE],
  );
  const lines = tableCsv(spec).split("\r\n");
  assert.equal(
    lines[0],
    "Annotator,Annotations,Per hour (active),Median lead time (ms),Gold answers,Gold accuracy,Agreement with final,Suggestion accepted,Wrong suggestion accepted,Paused",
  );
  assert.equal(lines[1], "ann,10,42.5,4200,4,0.75,0.9,0.5,0.25,false");
  assert.equal(lines[2], "'=HYPERLINK(1),3,,,0,,,,,true"); // neutralised, and missing figures are empty, not 0
  // the annotators list (un-pause) is fresher than the cached metrics
  const fresh = annotatorsTable(METRICS.annotators, pausedMap([{ username: "=HYPERLINK(1)", paused: false }]));
  assert.equal(fresh.columns.at(-1).text(METRICS.annotators[1]), "active");
});

test("agreement tables: per label (a label nobody agreed on stays —) and pairs (a negative kappa is data)", () => {
  const perLabel = agreementPerLabel(METRICS.agreement);
  assert.deepEqual(perLabel.rows.map((r) => perLabel.columns[1].text(r)), ["0.700", NONE]);
  assert.equal(tableCsv(agreementPairs(METRICS.agreement)).split("\r\n")[1], "ann,bob,-0.25,8");
});

test("model tables: versions, per-label F1 over the union of labels, confusion in any of the usual shapes", () => {
  assert.deepEqual(modelTable(METRICS.model).rows.map((r) => r.model_version), [1, 2]);
  const f1 = perLabelF1Table(METRICS.model);
  assert.deepEqual(f1.columns.map((c) => c.label), ["Version", "spam", "ham", "other"]);
  assert.deepEqual(f1.columns.map((c) => c.text(METRICS.model[1])), ["v2", "0.800", NONE, "0.700"]);
  assert.deepEqual(confusionOf({ labels: ["a", "b"], matrix: [[1, 0], [0, 1]] }), { labels: ["a", "b"], matrix: [[1, 0], [0, 1]] });
  assert.deepEqual(confusionOf([[1, 2], [3, 4]], ["a", "b"]), { labels: ["a", "b"], matrix: [[1, 2], [3, 4]] });
  assert.deepEqual(confusionOf({ a: { a: 2, b: 1 }, b: { b: 3 } }), { labels: ["a", "b"], matrix: [[2, 1], [0, 3]] });
  assert.equal(confusionOf(null), null);
  assert.equal(confusionOf({}), null);
  // the project's label order first (jsonb hands objects back sorted by key)
  assert.deepEqual(perLabelF1Table(METRICS.model, ["other", "ham", "spam"]).columns.map((c) => c.label), ["Version", "other", "ham", "spam"]);
  // multilabel: one 2x2 matrix per label
  const ml = confusionTable({ model_version: 3, confusion: { a: [[5, 1], [2, 3]], b: [[9, 0], [0, 2]] } });
  assert.equal(tableCsv(ml), "Label,True negatives,False positives,False negatives,True positives\r\na,5,1,2,3\r\nb,9,0,0,2\r\n");
  const cm = confusionTable(METRICS.model[0]);
  assert.equal(tableCsv(cm), "True label,Predicted spam,Predicted ham\r\nspam,3,2\r\nham,1,4\r\n");
});

test("live accuracy: gold and final (labeled as inflated) with their intervals, three CSV columns each", () => {
  const spec = liveTable(METRICS.live);
  assert.equal(spec.caption, "Live accuracy of v2");
  assert.deepEqual(spec.rows.map((r) => r.against), ["gold value (gold items)", "final label (inflated by automation bias)"]);
  assert.equal(spec.columns[2].text(spec.rows[0]), "70.0 % (40.0 % – 89.0 %)");
  const lines = tableCsv(spec).split("\r\n");
  assert.equal(lines[0], "Against,Items,Accuracy,Accuracy low,Accuracy high");
  assert.equal(lines[1], "gold value (gold items),10,0.7,0.4,0.89");
});

test("slices: flagged cells are marked per metric, explained in words, truncation said", () => {
  const spec = sliceTable("source", METRICS.slices.source);
  assert.equal(spec.caption, "Slices by source (the 20 largest)");
  const flagged = (row) => spec.columns.filter((c) => c.flag && c.flag(row)).map((c) => c.label);
  assert.deepEqual(flagged(METRICS.slices.source.rows[0]), ["Agreement (alpha)", "Gold accuracy"]);
  assert.deepEqual(flagged(METRICS.slices.source.rows[1]), []);
  assert.deepEqual(sliceFlagSentences("source", METRICS.slices.source), [
    "source = web: agreement is significantly worse than in the rest of the project.",
    "source = web: gold accuracy is significantly worse than in the rest of the project.",
  ]);
  const lines = tableCsv(spec).split("\r\n");
  assert.equal(
    lines[0],
    "Value,Items,Agreement (alpha),Agreement (alpha) low,Agreement (alpha) high,Gold accuracy,Gold accuracy low,Gold accuracy high,Model accuracy,Model accuracy low,Model accuracy high,Flagged",
  );
  assert.equal(lines[1], "web,30,0.2,0.05,0.35,0.4,0.2,0.6,,,,gold_accuracy agreement");
  assert.ok(lines[2].startsWith("'-sms,5,,,,0.9"), lines[2]);
});

test("stopping: the kappa history as a table", () => {
  assert.equal(tableCsv(stoppingTable(METRICS.stopping)), "Version,Cohen's kappa\r\n2,0.97\r\n");
});

test("empty states: each panel says why it is empty and what to do", () => {
  const empty = emptyStates(EMPTY_METRICS);
  assert.equal(empty.agreement, EMPTY.agreement);
  assert.match(empty.agreement, /fewer than two annotators on any item: agreement needs overlap ≥ 2/i);
  assert.match(empty.gold, /no gold items yet: mark some in Import .*PATCH \/api\/items\/\{id\}/i);
  assert.match(empty.model, /no model version yet: pre-label or train/i);
  for (const key of ["throughput", "annotators", "live", "liveGold", "learning", "slices", "stopping"]) assert.ok(empty[key], key);
  const full = emptyStates(METRICS);
  assert.deepEqual(Object.entries(full).filter(([, v]) => v !== null), []);
  // one pair with a kappa is agreement enough to draw
  const pairOnly = { ...EMPTY_METRICS, agreement: { ...EMPTY_METRICS.agreement, pairwise_cohen_kappa: [{ a: "x", b: "y", kappa: 0, n: 3 }] } };
  assert.equal(emptyStates(pairOnly).agreement, null);
});

test("charts: data straight from the metrics, gaps as null (never 0), the reliability diagonal", () => {
  const agreement = agreementChart(METRICS.agreement);
  assert.equal(agreement.type, "line");
  assert.deepEqual(agreement.data.labels, ["2026-12-05", "2026-12-06"]);
  assert.deepEqual(agreement.data.datasets[0].data, [0.5, null]);
  assert.deepEqual(throughputChart(METRICS.throughput).data.datasets.map((d) => d.data), [[12], [0]]);
  const gold = goldChart(METRICS.annotators);
  assert.deepEqual(gold.data.labels, ["ann"]); // no gold answers, no bar
  assert.deepEqual(gold.data.datasets[0].data, [0.75]);
  const f1 = perLabelF1Chart(METRICS.model);
  assert.deepEqual(f1.data.labels, ["spam", "ham", "other"]);
  assert.deepEqual(f1.data.datasets.map((d) => [d.label, d.data]), [["v1", [0.5, 0.6, null]], ["v2", [0.8, null, 0.7]]]);
  const rel = reliabilityChart(METRICS.model[0]);
  assert.deepEqual(rel.data.datasets[0].data, [{ x: 0, y: 0 }, { x: 1, y: 1 }]);
  assert.deepEqual(rel.data.datasets[1].data, [{ x: 0.55, y: 0.5 }]); // the empty bin is left out
  assert.deepEqual(learningCurveChart(METRICS.learning_curve).data.datasets[0].data, [{ x: 0, y: 0.6 }, { x: 80, y: 0.8 }]);
  const live = liveChart(METRICS.live);
  assert.deepEqual(live.data.labels, ["against gold", "against final (inflated)"]);
  assert.deepEqual(live.data.datasets[0].data, [[0.4, 0.89], [0.81, 0.97]]);
  assert.deepEqual(live.data.datasets[1].data, [0.7, 0.92]);
  assert.deepEqual(liveChart(EMPTY_METRICS.live).data.datasets[0].data, [null, null]);
  assert.deepEqual(stoppingChart(METRICS.stopping).data.labels, ["v2"]);
  // slices: per metric a bar for the interval (red where flagged) with its value; a missing interval is a gap
  const slices = sliceChart(METRICS.slices.source, isFlagged);
  assert.deepEqual(slices.data.labels, ["web", "-sms"]);
  assert.deepEqual(slices.plugins.map((p) => p.id), ["valueMarks"]);
  const [alphaSet, goldSet, modelSet] = slices.data.datasets;
  assert.deepEqual(alphaSet.data, [[0.05, 0.35], null]);
  assert.deepEqual(alphaSet.values, [0.2, null]);
  assert.deepEqual(modelSet.data, [null, [0.4, 0.96]]);
  assert.deepEqual(modelSet.values, [null, 0.8]);
  const fill = (ds, dataIndex) => ds.backgroundColor({ type: "data", dataIndex });
  assert.equal(fill(alphaSet, 0), FLAGGED_FILL); // web is flagged for agreement ...
  assert.equal(fill(goldSet, 0), FLAGGED_FILL); // ... and for gold accuracy
  assert.notEqual(fill(alphaSet, 1), FLAGGED_FILL);
  assert.notEqual(fill(modelSet, 0), FLAGGED_FILL); // not for the model
  assert.notEqual(alphaSet.backgroundColor({ type: "dataset" }), FLAGGED_FILL); // the legend keeps the metric's colour
});

test("the date range: ISO dates only, passed on to the metrics URL", () => {
  assert.deepEqual(rangeFrom("?since=2026-12-01&until=12/07/2026"), { since: "2026-12-01", until: "" });
  assert.deepEqual(rangeFrom(""), { since: "", until: "" });
  assert.equal(metricsUrl(3, { since: "2026-12-01", until: "2026-12-07" }), "/api/projects/3/metrics?since=2026-12-01&until=2026-12-07");
  assert.equal(metricsUrl(3, { since: "", until: "" }), "/api/projects/3/metrics");
  assert.equal(rangeText({ since: "2026-12-01", until: "" }), "from 2026-12-01 on");
  assert.equal(rangeText({ since: "", until: "" }), "the whole project");
});

test("paused annotators in words", () => {
  assert.equal(pausedText({ username: "ann", gold_answers: 12, gold_accuracy: 0.4 }), "ann: paused, gold accuracy 40.0 % over 12 gold answers");
  assert.equal(pausedText({ username: "b", gold_answers: 1, gold_accuracy: null }), "b: paused, gold accuracy — over 1 gold answer");
  assert.equal(pausedMap(null), null);
});
