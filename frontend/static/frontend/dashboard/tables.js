// The dashboard's tables as plain specs built from the metrics JSON (the contract of issue 13): pure, so the
// Node tests check them against a fixture. A spec is {id, caption, columns, rows}; a column is
// {label, value(row) (the raw figure: CSV), text(row) (what the cell shows), num, flag(row), csv: [{label, value}]}.

import { NONE, coef, count, interval, pct, rate, seconds, withInterval } from "./format.js";

const col = (label, value, text, extra = {}) => ({ label, value, text: text || ((r) => String(value(r) ?? NONE)), ...extra });
const numCol = (label, value, fmt, extra = {}) => col(label, value, (r) => fmt(value(r)), { num: true, ...extra });
// a figure with its interval: one cell on screen, three columns in the CSV
const ciCol = (label, value, ci, fmt = pct, extra = {}) =>
  numCol(label, value, fmt, {
    text: (r) => withInterval(value(r), ci(r), fmt),
    csv: [
      { label, value },
      { label: `${label} low`, value: (r) => (ci(r) || [])[0] ?? null },
      { label: `${label} high`, value: (r) => (ci(r) || [])[1] ?? null },
    ],
    ...extra,
  });

export function agreementOverTime(agreement) {
  return {
    id: "agreement-over-time",
    caption: "Agreement per day",
    columns: [
      col("Day", (r) => r.day),
      numCol("Krippendorff's alpha", (r) => r.krippendorff_alpha, coef),
      numCol("Items", (r) => r.n_items, count),
    ],
    rows: (agreement && agreement.over_time) || [],
  };
}

export function agreementPerLabel(agreement) {
  const perLabel = (agreement && agreement.per_label) || {};
  return {
    id: "agreement-per-label",
    caption: "Agreement per label (one label against the rest)",
    columns: [col("Label", (r) => r.label), numCol("Krippendorff's alpha", (r) => r.krippendorff_alpha, coef)],
    rows: Object.entries(perLabel).map(([label, v]) => ({ label, krippendorff_alpha: v ? v.krippendorff_alpha : null })),
  };
}

export function agreementPairs(agreement) {
  return {
    id: "agreement-pairs",
    caption: "Cohen's kappa per pair of annotators, over the items both labeled",
    columns: [
      col("Annotator", (r) => r.a),
      col("Other annotator", (r) => r.b),
      numCol("Cohen's kappa", (r) => r.kappa, coef),
      numCol("Items both labeled", (r) => r.n, count),
    ],
    rows: (agreement && agreement.pairwise_cohen_kappa) || [],
  };
}

export function throughputTable(throughput) {
  return {
    id: "throughput",
    caption: "Annotations and reviews per day (UTC)",
    columns: [
      col("Day", (r) => r.day),
      numCol("Annotations", (r) => r.annotations, count),
      numCol("Reviews", (r) => r.reviews, count),
    ],
    rows: throughput || [],
  };
}

/** `paused`: {username: bool} from GET /annotators/ (fresher than the cached metrics), or null. */
export function annotatorsTable(annotators, paused = null) {
  const isPaused = (r) => (paused && r.username in paused ? paused[r.username] : !!r.paused);
  return {
    id: "annotators",
    caption: "Per annotator",
    columns: [
      col("Annotator", (r) => r.username),
      numCol("Annotations", (r) => r.annotations, count),
      numCol("Per hour (active)", (r) => r.per_hour, rate),
      numCol("Median lead time", (r) => r.median_lead_time_ms, seconds, {
        csv: [{ label: "Median lead time (ms)", value: (r) => r.median_lead_time_ms }],
      }),
      numCol("Gold answers", (r) => r.gold_answers, count),
      numCol("Gold accuracy", (r) => r.gold_accuracy, pct),
      numCol("Agreement with final", (r) => r.agreement_with_final, pct),
      numCol("Suggestion accepted", (r) => r.suggestion_accepted_rate, pct),
      numCol("Wrong suggestion accepted", (r) => r.wrong_suggestion_accepted_rate, pct),
      col("Status", isPaused, (r) => (isPaused(r) ? "paused" : "active"), { csv: [{ label: "Paused", value: isPaused }] }),
    ],
    rows: annotators || [],
  };
}

export function modelTable(model) {
  return {
    id: "model-versions",
    caption: "Model versions on the fixed validation set",
    columns: [
      numCol("Version", (r) => r.model_version, (x) => `v${x}`),
      col("Status", (r) => r.status),
      numCol("Accuracy", (r) => r.accuracy, pct),
      numCol("Macro-F1", (r) => r.macro_f1, coef),
      numCol("ECE", (r) => r.ece, coef),
    ],
    rows: model || [],
  };
}

/**
 * The labels of every version's per-label F1 (a version may lack a label): those of `order` (the project's
 * labels) first, in that order, then the others as first seen (JSON objects from jsonb come back sorted by key).
 */
export function modelLabels(model, order = []) {
  const seen = [];
  for (const v of model || []) for (const label of Object.keys(v.per_label_f1 || {})) if (!seen.includes(label)) seen.push(label);
  return [...order.filter((l) => seen.includes(l)), ...seen.filter((l) => !order.includes(l))];
}

export function perLabelF1Table(model, order = []) {
  const labels = modelLabels(model, order);
  return {
    id: "model-per-label-f1",
    caption: "F1 per label and version",
    columns: [
      numCol("Version", (r) => r.model_version, (x) => `v${x}`),
      ...labels.map((label) => numCol(label, (r) => (r.per_label_f1 || {})[label] ?? null, coef)),
    ],
    rows: model || [],
  };
}

export function reliabilityTable(version) {
  return {
    id: `model-v${version ? version.model_version : ""}-reliability`,
    caption: `Reliability of v${version ? version.model_version : ""}: confidence against accuracy per bin`,
    columns: [
      col("Bin", (r) => r.bin),
      numCol("Mean confidence", (r) => r.confidence, pct),
      numCol("Accuracy", (r) => r.accuracy, pct),
      numCol("Items", (r) => r.n, count),
    ],
    rows: (version && version.reliability) || [],
  };
}

/**
 * A confusion matrix as {labels, matrix} (rows: true label, columns: predicted), whichever of the usual
 * shapes the API sends: {"labels", "matrix"}, a list of lists (labels from `fallbackLabels`), or
 * {true: {predicted: n}}. null when there is none.
 */
export function confusionOf(confusion, fallbackLabels = []) {
  if (!confusion) return null;
  if (Array.isArray(confusion)) return confusion.length ? { labels: fallbackLabels.slice(0, confusion.length), matrix: confusion } : null;
  if (Array.isArray(confusion.matrix)) return { labels: confusion.labels || fallbackLabels, matrix: confusion.matrix };
  const labels = Object.keys(confusion);
  if (!labels.length) return null;
  for (const row of Object.values(confusion)) for (const l of Object.keys(row || {})) if (!labels.includes(l)) labels.push(l);
  return { labels, matrix: labels.map((t) => labels.map((p) => (confusion[t] || {})[p] ?? 0)) };
}

/** A multilabel confusion: {label: [[tn, fp], [fn, tp]]} (scikit-learn's multilabel_confusion_matrix per label). */
export function isPerLabelConfusion(confusion) {
  const values = confusion && !Array.isArray(confusion) && !Array.isArray(confusion.matrix) ? Object.values(confusion) : [];
  return values.length > 0 && values.every((m) => Array.isArray(m) && m.length === 2 && m.every((r) => Array.isArray(r) && r.length === 2));
}

export function confusionTable(version, fallbackLabels = []) {
  const v = version ? version.model_version : "";
  if (isPerLabelConfusion(version && version.confusion)) {
    return {
      id: `model-v${v}-confusion`,
      caption: `Confusion of v${v} per label (multilabel: each label against its absence)`,
      columns: [
        col("Label", (r) => r.label),
        numCol("True negatives", (r) => r.m[0][0], count),
        numCol("False positives", (r) => r.m[0][1], count),
        numCol("False negatives", (r) => r.m[1][0], count),
        numCol("True positives", (r) => r.m[1][1], count),
      ],
      rows: Object.entries(version.confusion).map(([label, m]) => ({ label, m })),
    };
  }
  const cm = confusionOf(version && version.confusion, fallbackLabels);
  const labels = cm ? cm.labels : [];
  return {
    id: `model-v${version ? version.model_version : ""}-confusion`,
    caption: `Confusion matrix of v${version ? version.model_version : ""}: rows are the true label, columns the prediction`,
    columns: [
      col("True label", (r) => r.label),
      ...labels.map((label, j) => numCol(`Predicted ${label}`, (r) => r.counts[j] ?? null, count)),
    ],
    rows: cm ? labels.map((label, i) => ({ label, counts: cm.matrix[i] || [] })) : [],
  };
}

export function liveTable(live) {
  const rows = [];
  if (live && live.gold) rows.push({ against: "gold value (gold items)", ...live.gold });
  if (live && live.final) rows.push({ against: "final label (inflated by automation bias)", ...live.final });
  return {
    id: "live-accuracy",
    caption: `Live accuracy of ${live && live.model_version != null ? `v${live.model_version}` : "the active version"}`,
    columns: [
      col("Against", (r) => r.against),
      numCol("Items", (r) => r.n, count),
      ciCol("Accuracy", (r) => r.accuracy, (r) => r.ci),
    ],
    rows,
  };
}

export function learningCurveTable(curve) {
  return {
    id: "learning-curve",
    caption: "Accuracy on the validation set against the number of training labels",
    columns: [
      numCol("Version", (r) => r.model_version, (x) => `v${x}`),
      numCol("Training labels", (r) => r.n_train, count),
      numCol("Accuracy", (r) => r.accuracy, pct),
    ],
    rows: curve || [],
  };
}

// the metric names a slice row's "flagged" may hold, per column (the short and the long spelling)
const FLAGS = {
  agreement: ["agreement"],
  gold: ["gold_accuracy", "gold"],
  model: ["model_accuracy", "model"],
};
export const isFlagged = (row, metric) => (row.flagged || []).some((f) => FLAGS[metric].includes(f));

export function sliceTable(field, slice) {
  return {
    id: `slice-${field}`,
    caption: `Slices by ${field}${slice && slice.truncated ? " (the 20 largest)" : ""}`,
    columns: [
      col("Value", (r) => r.value, (r) => (r.value === null || r.value === undefined ? "(none)" : String(r.value))),
      numCol("Items", (r) => r.n, count),
      ciCol("Agreement (alpha)", (r) => r.agreement, (r) => r.agreement_ci, coef, { flag: (r) => isFlagged(r, "agreement") }),
      ciCol("Gold accuracy", (r) => r.gold_accuracy, (r) => r.gold_ci, pct, { flag: (r) => isFlagged(r, "gold") }),
      ciCol("Model accuracy", (r) => r.model_accuracy, (r) => r.model_ci, pct, { flag: (r) => isFlagged(r, "model") }),
      col("Flagged", (r) => (r.flagged || []).join(" "), (r) => (r.flagged || []).join(", ") || NONE),
    ],
    rows: (slice && slice.rows) || [],
  };
}

/** One sentence per flagged cell of a field ("text_length = q1: gold accuracy is significantly worse …"). */
export function sliceFlagSentences(field, slice) {
  const names = { agreement: "agreement", gold: "gold accuracy", model: "the model's live accuracy" };
  const out = [];
  for (const row of (slice && slice.rows) || []) {
    for (const metric of Object.keys(FLAGS)) {
      if (isFlagged(row, metric)) {
        out.push(`${field} = ${row.value}: ${names[metric]} is significantly worse than in the rest of the project.`);
      }
    }
  }
  return out;
}

export function stoppingTable(stopping) {
  return {
    id: "stopping",
    caption: "Agreement of each version's predictions with the previous version's, on the fixed sample",
    columns: [numCol("Version", (r) => r.model_version, (x) => `v${x}`), numCol("Cohen's kappa", (r) => r.kappa, coef)],
    rows: (stopping && stopping.kappa_history) || [],
  };
}

export { interval };
