// The "New snapshot" form as the API's request body (POST /api/projects/{id}/snapshots), and where an
// error the API names goes back on the form. Pure: no DOM, tested in frontend/tests/snapshots.test.mjs.
//
// Only what the user set is sent: an empty input, no box checked, the default gold "include" leave the filter
// out, so the server's defaults (docs/datasets.md) apply and the snapshot's filters say only what was chosen.

/** Comma-separated names as a list: trimmed, empties and repeats dropped, order kept. */
export function parseList(text) {
  const seen = new Set();
  for (const part of String(text || "").split(",")) {
    const name = part.trim();
    if (name) seen.add(name);
  }
  return [...seen];
}

/** A number input's text as a number, or undefined when empty ("" and whitespace); NaN stays NaN. */
export function numberOf(text) {
  const raw = String(text ?? "").trim();
  return raw === "" ? undefined : Number(raw);
}

/**
 * A metadata condition's value as the API matches it (JSON equality on the item's field): a number, true, false
 * or null as typed is that JSON value; anything else, or a value in double quotes ("42"), is text.
 */
export function metaValue(text) {
  const raw = String(text ?? "").trim();
  if (/^"(.*)"$/s.test(raw)) return raw.slice(1, -1);
  if (raw === "true") return true;
  if (raw === "false") return false;
  if (raw === "null") return null;
  if (/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(raw)) return Number(raw);
  return raw;
}

/** The split ratios' sum, rounded away from float noise (0.7 + 0.2 + 0.1 is 1, not 0.9999999999999999). */
export function splitSum(values) {
  let sum = 0;
  for (const key of ["train", "validation", "test"]) {
    const n = numberOf(values[key]);
    if (n === undefined || Number.isNaN(n)) return NaN;
    sum += n;
  }
  return Math.round(sum * 1e6) / 1e6;
}

/** The live hint under the split: what it sums to, and whether the API will take it (within 1e-6 of 1). */
export function splitSumText(values) {
  const sum = splitSum(values);
  if (Number.isNaN(sum)) return { ok: false, text: "Give train, validation and test a number each." };
  if (Math.abs(sum - 1) <= 1e-6) return { ok: true, text: "Sums to 1." };
  return { ok: false, text: "Sums to " + sum + ": train, validation and test must sum to 1." };
}

/**
 * The request body from the form's values:
 * {name, status: [..], source: [..], labels: [..], min_agreement, annotators (text), created_after, created_before,
 *  decided_after, decided_before (yyyy-mm-dd or ""), meta: [{field, value}], gold, train, validation, test, seed,
 *  stratify (bool), group_by, pseudonymize (bool)}; number fields arrive as the inputs' text.
 */
export function snapshotBody(values) {
  const filters = {};
  // an empty status list would select nothing: sent as it is, so the API says so rather than guessing
  filters.status = [...(values.status || [])];
  for (const key of ["source", "labels"]) {
    if (values[key] && values[key].length) filters[key] = [...values[key]];
  }
  const agreement = numberOf(values.min_agreement);
  if (agreement !== undefined) filters.min_agreement = agreement;
  const annotators = parseList(values.annotators);
  if (annotators.length) filters.annotators = annotators;
  for (const key of ["created_after", "created_before", "decided_after", "decided_before"]) {
    if (values[key]) filters[key] = values[key];
  }
  const meta = {};
  for (const row of values.meta || []) {
    const field = String(row.field || "").trim();
    if (field) meta[field] = metaValue(row.value);
  }
  if (Object.keys(meta).length) filters.meta = meta;
  if (values.gold && values.gold !== "include") filters.gold = values.gold;

  const split = {
    train: numberOf(values.train),
    validation: numberOf(values.validation),
    test: numberOf(values.test),
    seed: numberOf(values.seed),
    stratify: values.stratify !== false,
  };
  for (const key of Object.keys(split)) if (split[key] === undefined) delete split[key];
  const groupBy = String(values.group_by || "").trim();
  if (groupBy) split.group_by = groupBy;

  return { name: String(values.name || "").trim(), filters, split, pseudonymize: !!values.pseudonymize };
}

/**
 * Which of the form's fields (`known`, the data-field names) shows an error the API gave for `field`: the field
 * itself, else its nearest enclosing one ("filters.meta.lang" -> "filters.meta", "labels[2]" -> "labels",
 * "filters.foo" -> "filters" if known), else null (the error then shows only in the form's summary).
 */
export function errorTarget(field, known) {
  let name = String(field || "");
  const has = (n) => (known instanceof Set ? known.has(n) : known.includes(n));
  while (name) {
    if (has(name)) return name;
    const cut = Math.max(name.lastIndexOf("."), name.lastIndexOf("["));
    if (cut <= 0) return null;
    name = name.slice(0, cut);
  }
  return null;
}
