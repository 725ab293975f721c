// Character offsets. The API counts Python characters (Unicode code points); JS strings index UTF-16
// units, where an emoji is two. Every offset crosses that boundary through these helpers.
// Pure functions: no DOM, importable in Node.

/**
 * Maps between code points and UTF-16 units for one text.
 * cpToU16[cp] is the UTF-16 index of code point cp (cpToU16[length] = text.length);
 * u16ToCp[u] is the code point a UTF-16 index falls in.
 */
export function codePointIndex(text) {
  const cpToU16 = [];
  const u16ToCp = new Int32Array(text.length + 1);
  let u = 0;
  let cp = 0;
  for (const ch of text) {
    cpToU16.push(u);
    for (let k = 0; k < ch.length; k++) u16ToCp[u + k] = cp;
    u += ch.length;
    cp += 1;
  }
  cpToU16.push(u);
  u16ToCp[u] = cp;
  return { cpToU16, u16ToCp, length: cp };
}

/** The text between two code point offsets. */
export function sliceCodePoints(text, start, end) {
  return Array.from(text || "").slice(start, end).join("");
}

/** True for a span-like {start, end} of whole code points inside a text of `length` code points. */
export function validRange(r, length) {
  return Number.isInteger(r.start) && Number.isInteger(r.end) && r.start >= 0 && r.start < r.end && r.end <= length;
}

const LOW_SURROGATE = /[\uDC00-\uDFFF]/;

/**
 * A UTF-16 selection [a, b) made tidy: whitespace trimmed at both ends, never splitting a surrogate
 * pair (an emoji is two UTF-16 units and one Python character). Null when nothing is left.
 */
export function trimSelection(text, a, b) {
  while (a < b && /\s/.test(text[a])) a++;
  while (b > a && /\s/.test(text[b - 1])) b--;
  if (a > 0 && LOW_SURROGATE.test(text[a])) a--;
  if (b < text.length && LOW_SURROGATE.test(text[b])) b++;
  if (a >= b) return null;
  return [a, b];
}

/**
 * The steps of keyboard selection, as UTF-16 [start, end) pairs: words (letters, digits, marks,
 * underscore) and single punctuation characters.
 */
export function wordTokens(text) {
  return [...(text || "").matchAll(/[\p{L}\p{N}\p{M}_]+|[^\s\p{L}\p{N}\p{M}_]/gu)].map((m) => [m.index, m.index + m[0].length]);
}

/**
 * Cuts [0, length) at every boundary of `ranges` ({a, b, ...}) and returns the pieces in order as
 * {a, b, covering}, covering being the ranges that contain the whole piece (in their given order).
 * Boundaries outside [0, length] are ignored.
 */
export function segments(length, ranges) {
  const cuts = new Set([0, length]);
  for (const r of ranges) cuts.add(r.a).add(r.b);
  const points = [...cuts].filter((x) => x >= 0 && x <= length).sort((x, y) => x - y);
  const out = [];
  for (let k = 0; k + 1 < points.length; k++) {
    const a = points[k];
    const b = points[k + 1];
    out.push({ a, b, covering: ranges.filter((r) => r.a <= a && r.b >= b) });
  }
  return out;
}
