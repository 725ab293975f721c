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

/**
 * Whether the page may pre-select the suggestion: the server says so (`prediction.preselect`, issue 13): never
 * for a zero-shot model, a trained version's only at or above the project's preselect_min_confidence.
 * Missing (an older server): no, so an unsure suggestion is never one Enter away.
 */
export function preselectOf(item) {
  return !!(item && item.prediction && item.prediction.preselect === true);
}

/** Whether the suggestion comes from a zero-shot model (a prediction without `kind` predates the field: zero-shot). */
export function isZeroShot(item) {
  const kind = item && item.prediction && item.prediction.kind;
  return kind !== "fine_tuned";
}

/** Which model suggested it, in words: "model version 3, fine-tuned" / "model version 1, zero-shot". */
export function suggestionSource(item) {
  const p = item && item.prediction;
  if (!p) return "";
  const kind = isZeroShot(item) ? "zero-shot" : "fine-tuned";
  return p.model_version != null ? `model version ${p.model_version}, ${kind}` : kind;
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

/**
 * How the page shows the suggestion in its banner. A zero-shot model's probabilities are not calibrated, so its
 * number is called a score, not confidence. Spans not pre-filled are listed (at most 5) so they can be copied.
 */
export function suggestionText(schema, item, sug, { preselected = true } = {}) {
  if (schema.task === "classification") {
    const p = confidenceOf(item, sug.label);
    if (p === null) return sug.label;
    return `${sug.label} (${isZeroShot(item) ? `score ${pct(p)}, uncalibrated` : `${pct(p)} confident`})`;
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
  const n = `${sug.spans.length} span${sug.spans.length === 1 ? "" : "s"}`;
  if (preselected || !sug.spans.length) return `${n}${sug.spans.length ? ", pre-filled below" : ""}`;
  const cps = Array.from((item.data && item.data.text) || "");
  const shown = sug.spans.slice(0, 5).map((s) => `${s.label} “${cps.slice(s.start, s.end).join("")}”`);
  return `${n}: ${shown.join(", ")}${sug.spans.length > 5 ? ", …" : ""}`;
}
