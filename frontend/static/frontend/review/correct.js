// Correct mode of the review page: the reviewer's own final value, started from the selected
// annotation. Pure: no DOM.
//   classification  the label picked is saved at once
//   multilabel       labels toggle, Enter saves
//   spans            each of the annotation's spans is kept or dropped, Enter saves the kept ones

/** A correction started from an annotation's value. */
export function startCorrection(task, value) {
  if (task === "classification") return { label: null };
  if (task === "multilabel") return { labels: new Set(value.labels || []) };
  return { spans: (value.spans || []).map((s) => ({ ...s, keep: true })) };
}

/** Toggles a label (multilabel) in place. */
export function toggleLabel(c, name) {
  if (c.labels.has(name)) c.labels.delete(name);
  else c.labels.add(name);
}

/** Keeps or drops span i in place; false when there is no such span. */
export function toggleSpan(c, i) {
  const s = c && c.spans && c.spans[i];
  if (!s) return false;
  s.keep = !s.keep;
  return true;
}

/** The value a multilabel or spans correction saves (labels in the project's order). */
export function correctionValue(task, labelNames, c) {
  if (task === "multilabel") return { labels: labelNames.filter((n) => c.labels.has(n)) };
  return { spans: c.spans.filter((s) => s.keep).map((s) => ({ start: s.start, end: s.end, label: s.label })) };
}
