// Chart.js configurations built from the metrics JSON (pure: the Node tests check them), and the one place
// that draws them (with window.Chart, the UMD build from npm that dashboard.html loads when it is installed).
// Missing figures are null (a gap in the line), never 0.

import { plot } from "./format.js";
import { modelLabels } from "./tables.js";

// colours that keep 3:1 against white (WCAG's non-text contrast), in a fixed order
export const COLORS = ["#0b57a4", "#b45309", "#1d5e34", "#6d28d9", "#a4161a", "#0f766e", "#4b5563", "#9d174d"];

const axis = (title, extra = {}) => ({ title: { display: true, text: title }, ...extra });
const unit = (title) => axis(title, { min: 0, max: 1 });
const base = (xTitle, yTitle, y = axis(yTitle)) => ({
  responsive: true,
  maintainAspectRatio: false,
  animation: false,
  scales: { x: axis(xTitle), y },
  plugins: { legend: { display: true } },
});

export function agreementChart(agreement) {
  const days = (agreement && agreement.over_time) || [];
  return {
    type: "line",
    data: {
      labels: days.map((d) => d.day),
      datasets: [
        {
          label: "Krippendorff's alpha",
          data: days.map((d) => plot(d.krippendorff_alpha)),
          borderColor: COLORS[0],
          backgroundColor: COLORS[0],
          spanGaps: false,
        },
      ],
    },
    options: base("day (UTC)", "alpha", axis("alpha", { suggestedMin: 0, max: 1 })),
  };
}

export function throughputChart(throughput) {
  const days = throughput || [];
  return {
    type: "bar",
    data: {
      labels: days.map((d) => d.day),
      datasets: [
        { label: "annotations", data: days.map((d) => plot(d.annotations)), backgroundColor: COLORS[0] },
        { label: "reviews", data: days.map((d) => plot(d.reviews)), backgroundColor: COLORS[1] },
      ],
    },
    options: base("day (UTC)", "count", axis("count", { beginAtZero: true })),
  };
}

export function goldChart(annotators) {
  const rows = (annotators || []).filter((a) => (a.gold_answers || 0) > 0);
  return {
    type: "bar",
    data: {
      labels: rows.map((a) => a.username),
      datasets: [{ label: "gold accuracy", data: rows.map((a) => plot(a.gold_accuracy)), backgroundColor: COLORS[2] }],
    },
    options: base("annotator", "gold accuracy", unit("gold accuracy")),
  };
}

export function perLabelF1Chart(model, order = []) {
  const labels = modelLabels(model, order);
  const versions = [...(model || [])].sort((a, b) => a.model_version - b.model_version);
  return {
    type: "bar",
    data: {
      labels,
      datasets: versions.map((v, i) => ({
        label: `v${v.model_version}`,
        data: labels.map((l) => plot((v.per_label_f1 || {})[l])),
        backgroundColor: COLORS[i % COLORS.length],
      })),
    },
    options: base("label", "F1", unit("F1")),
  };
}

/** The reliability diagram of one version: accuracy per confidence bin, with the diagonal of perfect calibration. */
export function reliabilityChart(version) {
  const bins = ((version && version.reliability) || []).filter((b) => b.n > 0);
  return {
    type: "scatter",
    data: {
      datasets: [
        {
          label: "perfect calibration",
          data: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
          showLine: true,
          pointRadius: 0,
          borderDash: [6, 4],
          borderColor: COLORS[6],
          backgroundColor: COLORS[6],
        },
        {
          label: `v${version ? version.model_version : ""}`,
          data: bins.map((b) => ({ x: b.confidence, y: b.accuracy })),
          showLine: true,
          borderColor: COLORS[0],
          backgroundColor: COLORS[0],
        },
      ],
    },
    options: base("confidence", "accuracy", unit("accuracy")),
  };
}

export function learningCurveChart(curve) {
  const points = [...(curve || [])].filter((p) => p.n_train !== null && p.n_train !== undefined).sort((a, b) => a.n_train - b.n_train);
  return {
    type: "scatter",
    data: {
      datasets: [
        {
          label: "validation accuracy",
          data: points.map((p) => ({ x: p.n_train, y: plot(p.accuracy) })),
          showLine: true,
          borderColor: COLORS[0],
          backgroundColor: COLORS[0],
        },
      ],
    },
    options: base("training labels", "accuracy", unit("accuracy")),
  };
}

/** Live accuracy: a floating bar for each 95 % interval and a point for the accuracy itself. */
export function liveChart(live) {
  const parts = [];
  if (live && live.gold) parts.push(["against gold", live.gold]);
  if (live && live.final) parts.push(["against final (inflated)", live.final]);
  const ci = (p) => (Array.isArray(p.ci) && p.ci.every((x) => typeof x === "number") ? p.ci : null);
  return {
    type: "bar",
    data: {
      labels: parts.map(([name]) => name),
      datasets: [
        // a higher `order` is drawn first: the intervals under the points
        { type: "bar", label: "95 % interval", data: parts.map(([, p]) => ci(p)), backgroundColor: "#9dbcf0", barPercentage: 0.4, order: 2 },
        {
          type: "line",
          order: 1,
          label: "accuracy",
          data: parts.map(([, p]) => plot(p.accuracy)),
          showLine: false,
          pointRadius: 7,
          pointStyle: "rectRot",
          borderColor: "#1b1b1b",
          backgroundColor: "#1b1b1b",
        },
      ],
    },
    options: base("", "accuracy", unit("accuracy")),
  };
}

// the slice chart's metrics: [name, value key, interval key, interval fill, value mark colour, flag name]
const SLICE_METRICS = [
  ["agreement (alpha)", "agreement", "agreement_ci", "#9dbcf0", COLORS[0], "agreement"],
  ["gold accuracy", "gold_accuracy", "gold_ci", "#f3c99b", COLORS[1], "gold"],
  ["model accuracy", "model_accuracy", "model_ci", "#a7d3b5", COLORS[2], "model"],
];
export const FLAGGED_FILL = "#e8a0a0";

/**
 * One field's slices: per metric, a floating bar for each slice's 95 % interval (red where the slice is flagged
 * for that metric) with the value marked across it (the `valueMarks` plugin below reads each dataset's `values`).
 */
export function sliceChart(slice, isFlagged) {
  const rows = (slice && slice.rows) || [];
  const ci = (r, key) => (Array.isArray(r[key]) && r[key].every((x) => typeof x === "number") ? r[key] : null);
  return {
    type: "bar",
    data: {
      labels: rows.map((r) => (r.value === null || r.value === undefined ? "(none)" : String(r.value))),
      datasets: SLICE_METRICS.map(([name, key, ciKey, fill, mark, flag]) => {
        const flagged = rows.map((r) => isFlagged(r, flag));
        return {
          label: `${name}: value and 95 % interval`,
          data: rows.map((r) => ci(r, ciKey)),
          values: rows.map((r) => plot(r[key])),
          flagged,
          // a function, so the legend (context "dataset") keeps the metric's colour
          backgroundColor: (c) => (c.type === "data" && flagged[c.dataIndex] ? FLAGGED_FILL : fill),
          borderColor: mark,
          borderWidth: 1,
          markColor: mark,
        };
      }),
    },
    options: base("slice", "value", axis("value", { suggestedMin: 0, max: 1 })),
    plugins: [valueMarks],
  };
}

/** Draws each bar dataset's `values` as a thick line across its bar (a value inside its interval). */
export const valueMarks = {
  id: "valueMarks",
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    chart.data.datasets.forEach((ds, i) => {
      const meta = chart.getDatasetMeta(i);
      if (!Array.isArray(ds.values) || !chart.isDatasetVisible(i)) return;
      const scale = chart.scales[meta.yAxisID];
      meta.data.forEach((bar, j) => {
        const v = ds.values[j];
        if (typeof v !== "number") return;
        const { x, width } = bar.getProps(["x", "width"], true);
        if (!Number.isFinite(x) || !Number.isFinite(width)) return;
        const y = scale.getPixelForValue(v);
        ctx.save();
        ctx.strokeStyle = ds.markColor || "#1b1b1b";
        ctx.lineWidth = 4;
        ctx.beginPath();
        ctx.moveTo(x - width / 2, y);
        ctx.lineTo(x + width / 2, y);
        ctx.stroke();
        ctx.restore();
      });
    });
  },
};

export function stoppingChart(stopping) {
  const rows = (stopping && stopping.kappa_history) || [];
  return {
    type: "line",
    data: {
      labels: rows.map((r) => `v${r.model_version}`),
      datasets: [{ label: "kappa with the previous version", data: rows.map((r) => plot(r.kappa)), borderColor: COLORS[3], backgroundColor: COLORS[3] }],
    },
    options: base("model version", "Cohen's kappa", axis("Cohen's kappa", { suggestedMin: 0, max: 1 })),
  };
}

/** Draws `config` on `canvas`; false when Chart.js is not loaded (the page then says so once). */
export function draw(canvas, config) {
  const Chart = globalThis.Chart;
  if (typeof Chart !== "function") return false;
  const old = Chart.getChart ? Chart.getChart(canvas) : null;
  if (old) old.destroy();
  new Chart(canvas, config);
  return true;
}
