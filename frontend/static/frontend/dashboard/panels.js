// One function per dashboard panel: metrics JSON in, the panel's contents out (tables, charts, empty states).

import { make } from "../lib/dom.js";
import {
  agreementChart,
  goldChart,
  learningCurveChart,
  liveChart,
  perLabelF1Chart,
  reliabilityChart,
  sliceChart,
  stoppingChart,
  throughputChart,
} from "./charts.js";
import { emptyStates } from "./empty.js";
import { coef, count, pct } from "./format.js";
import { chartBlock, emptyNote, figures, fill, tableBlock } from "./render.js";
import {
  agreementOverTime,
  agreementPairs,
  agreementPerLabel,
  annotatorsTable,
  isFlagged,
  confusionTable,
  learningCurveTable,
  liveTable,
  modelTable,
  perLabelF1Table,
  reliabilityTable,
  sliceFlagSentences,
  sliceTable,
  stoppingTable,
  throughputTable,
} from "./tables.js";

const panel = (name) => document.getElementById(`panel-${name}`);

function agreementPanel(m, ctx, empty) {
  const a = m.agreement || {};
  const nodes = [
    figures([
      ["Krippendorff's alpha", coef(a.krippendorff_alpha)],
      ["Fleiss' kappa", coef(a.fleiss_kappa)],
      ["Items with 2+ annotations", count(a.n_items)],
    ]),
  ];
  if (empty.agreement) nodes.push(emptyNote(empty.agreement));
  else {
    nodes.push(chartBlock("Krippendorff's alpha per day", agreementChart(a)));
    nodes.push(tableBlock(agreementOverTime(a), ctx.project));
    nodes.push(tableBlock(agreementPerLabel(a), ctx.project));
    nodes.push(tableBlock(agreementPairs(a), ctx.project));
  }
  fill(panel("agreement"), nodes);
}

function throughputPanel(m, ctx, empty) {
  if (empty.throughput) return fill(panel("throughput"), [emptyNote(empty.throughput)]);
  fill(panel("throughput"), [
    chartBlock("Annotations and reviews per day", throughputChart(m.throughput)),
    tableBlock(throughputTable(m.throughput), ctx.project),
  ]);
}

function annotatorsPanel(m, ctx, empty) {
  if (empty.annotators) return fill(panel("annotators"), [emptyNote(empty.annotators)]);
  const nodes = [make("h3", null, "Gold accuracy per annotator")];
  if (empty.gold) nodes.push(emptyNote(empty.gold));
  else nodes.push(chartBlock("Gold accuracy per annotator", goldChart(m.annotators)));
  nodes.push(tableBlock(annotatorsTable(m.annotators, ctx.paused), ctx.project));
  fill(panel("annotators"), nodes);
}

/** The version shown in detail: the one chosen, else the active one, else the newest. */
function detailVersion(model, chosen) {
  return (
    model.find((v) => v.model_version === chosen) ||
    model.find((v) => v.status === "active") ||
    [...model].sort((a, b) => b.model_version - a.model_version)[0]
  );
}

function modelPanel(m, ctx, empty) {
  if (empty.model) return fill(panel("model"), [emptyNote(empty.model)]);
  const model = m.model;
  const nodes = [tableBlock(modelTable(model), ctx.project)];
  nodes.push(make("h3", null, "F1 per label"));
  nodes.push(chartBlock("F1 per label and version", perLabelF1Chart(model, ctx.labels)));
  nodes.push(tableBlock(perLabelF1Table(model, ctx.labels), ctx.project));

  const version = detailVersion(model, ctx.modelVersion);
  const pick = make("p", "version-pick");
  const label = make("label", null, "Version shown below ");
  label.htmlFor = "dash-version";
  const select = make("select");
  select.id = "dash-version";
  for (const v of [...model].sort((a, b) => b.model_version - a.model_version)) {
    const option = make("option", null, `v${v.model_version} (${v.status})`);
    option.value = String(v.model_version);
    option.selected = v === version;
    select.append(option);
  }
  select.addEventListener("change", () => {
    ctx.modelVersion = Number(select.value);
    modelPanel(m, ctx, empty);
    document.getElementById("dash-version").focus();
  });
  pick.append(label, select);
  nodes.push(pick);
  nodes.push(make("h3", null, `Reliability of v${version.model_version}`));
  nodes.push(figures([["Expected calibration error (ECE)", coef(version.ece)], ["Accuracy", pct(version.accuracy)]]));
  if ((version.reliability || []).length) {
    nodes.push(chartBlock(`Reliability diagram of v${version.model_version}`, reliabilityChart(version)));
    nodes.push(tableBlock(reliabilityTable(version), ctx.project));
  } else nodes.push(emptyNote("This version has no reliability figures (spans, or not evaluated yet)."));
  const confusion = confusionTable(version, ctx.labels);
  if (confusion.rows.length) {
    nodes.push(make("h3", null, `Confusion matrix of v${version.model_version}`));
    nodes.push(tableBlock(confusion, ctx.project));
  }
  fill(panel("model"), nodes);
}

function livePanel(m, ctx, empty) {
  if (empty.live) return fill(panel("live"), [emptyNote(empty.live)]);
  const nodes = [];
  if (empty.liveGold) nodes.push(emptyNote(empty.liveGold));
  nodes.push(chartBlock("Live accuracy with 95 % intervals", liveChart(m.live)));
  nodes.push(tableBlock(liveTable(m.live), ctx.project));
  fill(panel("live"), nodes);
}

function learningPanel(m, ctx, empty) {
  if (empty.learning) return fill(panel("learning"), [emptyNote(empty.learning)]);
  fill(panel("learning"), [
    chartBlock("Learning curve", learningCurveChart(m.learning_curve)),
    tableBlock(learningCurveTable(m.learning_curve), ctx.project),
  ]);
}

function slicesPanel(m, ctx, empty) {
  if (empty.slices) return fill(panel("slices"), [emptyNote(empty.slices)]);
  const nodes = [];
  for (const [field, slice] of Object.entries(m.slices || {})) {
    const section = make("div", "slice");
    section.append(make("h3", null, field));
    if (slice.truncated) section.append(make("p", "hint", `Many values: the 20 largest slices of ${field} are shown.`));
    const flags = sliceFlagSentences(field, slice);
    if (flags.length) {
      const ul = make("ul", "flag-list");
      for (const s of flags) ul.append(make("li", null, s));
      section.append(ul);
    } else section.append(make("p", "hint", "No slice is significantly worse than the rest of the project."));
    section.append(chartBlock(`Slices by ${field}: values and 95 % intervals`, sliceChart(slice, isFlagged)));
    section.append(tableBlock(sliceTable(field, slice), ctx.project));
    nodes.push(section);
  }
  fill(panel("slices"), nodes);
}

function stoppingPanel(m, ctx, empty) {
  const s = m.stopping || {};
  const nodes = [];
  const sentence = s.sentence ? s.sentence.charAt(0).toUpperCase() + s.sentence.slice(1) : "";
  if (empty.stopping) {
    // no history yet: the server's sentence says what is missing, else the page's own note
    nodes.push(emptyNote(sentence || empty.stopping));
  } else {
    const p = make("p", `stopping-sentence ${s.stable ? "stable" : "unstable"}`);
    p.append(make("strong", null, s.stable ? "Stable. " : "Still changing. "), sentence || `kappa ${coef(s.kappa_history.at(-1).kappa)}.`);
    nodes.push(p);
    nodes.push(figures([["Sample size", count(s.sample_size)]]));
    nodes.push(chartBlock("Kappa between successive versions", stoppingChart(s)));
    nodes.push(tableBlock(stoppingTable(s), ctx.project));
  }
  fill(panel("stopping"), nodes);
}

/** Fills every panel from one metrics answer. */
export function renderAll(m, ctx) {
  const empty = emptyStates(m);
  agreementPanel(m, ctx, empty);
  throughputPanel(m, ctx, empty);
  annotatorsPanel(m, ctx, empty);
  modelPanel(m, ctx, empty);
  livePanel(m, ctx, empty);
  learningPanel(m, ctx, empty);
  slicesPanel(m, ctx, empty);
  stoppingPanel(m, ctx, empty);
}

/** Re-draws only the annotators panel (after an un-pause). */
export function renderAnnotators(m, ctx) {
  annotatorsPanel(m, ctx, emptyStates(m));
}
