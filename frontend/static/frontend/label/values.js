// Annotation values of the three task types, and the model's suggestion for an item. Pure: no DOM.
//   classification {label}, multilabel {labels: [...]}, spans {spans: [{start, end, label}]}
// Offsets are code points (lib/offsets.js).

import { codePointIndex, validRange } from "../lib/offsets.js";
import { safeColor } from "../lib/dom.js";

/** What the page needs to know about a project's labels, from the page config. */
export function makeSchema(cfg) {
  const names = cfg.labels.map((l) => l.name);
  return {
    task: cfg.taskType,
    labels: cfg.labels,
    order: new Map(names.map((n, i) => [n, i])),
    hotkeys: new Map(cfg.labels.filter((l) => l.hotkey).map((l) => [l.hotkey.toLowerCase(), l.name])),
    colors: new Map(cfg.labels.map((l) => [l.name, safeColor(l.color)])),
  };
}

export function emptyValue(schema) {
  if (schema.task === "classification") return { label: null };
  if (schema.task === "multilabel") return { labels: [] };
  return { spans: [] };
}

/** The identity of a span: its offsets and label. */
export const spanKey = (s) => `${s.start}:${s.end}:${s.label}`;

/** The value as the API stores it: known labels only, no duplicates, in label (or offset) order. */
export function canonical(schema, value) {
  if (!value) return null;
  if (schema.task === "classification") return { label: value.label ?? null };
  if (schema.task === "multilabel") {
    const labels = [...new Set(value.labels || [])].filter((l) => schema.order.has(l));
    labels.sort((a, b) => schema.order.get(a) - schema.order.get(b));
    return { labels };
  }
  const seen = new Set();
  const spans = [];
  for (const s of value.spans || []) {
    const key = spanKey(s);
    if (!seen.has(key) && schema.order.has(s.label)) {
      seen.add(key);
      spans.push({ start: s.start, end: s.end, label: s.label });
    }
  }
  spans.sort((a, b) => a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  return { spans };
}

export const sameValue = (schema, a, b) => JSON.stringify(canonical(schema, a)) === JSON.stringify(canonical(schema, b));

/** Whether the value may be submitted: a classification needs its label, the others may be empty. */
export function isComplete(schema, value) {
  return schema.task !== "classification" || !!(value && value.label);
}

/** The prediction of an item as a value the expert can accept, or null (unusable or none). */
export function suggestionOf(schema, item) {
  const p = item.prediction;
  if (!p || !p.value || typeof p.value !== "object") return null;
  const v = canonical(schema, p.value);
  if (schema.task === "classification" && !schema.order.has(v.label)) return null;
  if (schema.task === "spans") {
    const n = codePointIndex((item.data && item.data.text) || "").length;
    v.spans = v.spans.filter((s) => validRange(s, n));
  }
  return v;
}

/** The model's probability for a label, or null. */
export function confidenceOf(item, label) {
  const probs = item && item.prediction && item.prediction.probabilities;
  return probs && typeof probs[label] === "number" ? probs[label] : null;
}

export const pct = (p) => `${Math.round(p * 100)}%`;

/** The value after choosing a label: classification picks it, multilabel toggles it. */
export function withLabel(schema, value, name) {
  if (schema.task === "classification") return { label: name };
  const set = new Set(value.labels);
  if (set.has(name)) set.delete(name);
  else set.add(name);
  return { labels: [...set] };
}

/** The value with one more span (unchanged when the same span is already there). */
export function withSpan(value, span) {
  if (value.spans.some((s) => s.start === span.start && s.end === span.end && s.label === span.label)) return value;
  return { spans: [...value.spans, { start: span.start, end: span.end, label: span.label }] };
}

/** [value without span i, the removed span] (the removed span is undefined for a bad index). */
export function withoutSpan(value, i) {
  const spans = value.spans.slice();
  const [gone] = spans.splice(i, 1);
  return [{ spans }, gone];
}

/** How the page shows the suggestion in its banner. */
export function suggestionText(schema, item, sug) {
  if (schema.task === "classification") {
    const p = confidenceOf(item, sug.label);
    return `${sug.label}${p !== null ? ` (${pct(p)} confident)` : ""}`;
  }
  if (schema.task === "multilabel") {
    return sug.labels.length
      ? sug.labels
          .map((l) => {
            const p = confidenceOf(item, l);
            return p !== null ? `${l} (${pct(p)})` : l;
          })
          .join(", ")
      : "none of the labels";
  }
  return `${sug.spans.length} span${sug.spans.length === 1 ? "" : "s"}, pre-filled below`;
}
