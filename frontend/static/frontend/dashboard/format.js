// Number formatting for the dashboard: one rule for missing figures ("—", never 0) and for intervals.

export const NONE = "—";

const isNum = (x) => typeof x === "number" && Number.isFinite(x);

/** A share (0..1) as a percentage with one decimal ("87.5 %"), or — when undefined. */
export function pct(x) {
  return isNum(x) ? `${(x * 100).toFixed(1)} %` : NONE;
}

/** A coefficient (alpha, kappa, F1) with three decimals, or —. */
export function coef(x) {
  return isNum(x) ? x.toFixed(3) : NONE;
}

/** A count with thousands separators, or —. */
export function count(x) {
  return isNum(x) ? Math.round(x).toLocaleString("en-US") : NONE;
}

/** A rate with one decimal (annotations per hour), or —. */
export function rate(x) {
  return isNum(x) ? x.toFixed(1) : NONE;
}

/** A duration in milliseconds as seconds ("4.2 s"), or —. */
export function seconds(ms) {
  return isNum(ms) ? `${(ms / 1000).toFixed(1)} s` : NONE;
}

/** A [lo, hi] interval; `fmt` formats each end. — when either end is missing. */
export function interval(ci, fmt = pct) {
  if (!Array.isArray(ci) || ci.length !== 2 || !isNum(ci[0]) || !isNum(ci[1])) return NONE;
  return `${fmt(ci[0])} – ${fmt(ci[1])}`;
}

/** A value with its interval: "81.0 % (70.2 % – 88.6 %)", or the value alone, or —. */
export function withInterval(x, ci, fmt = pct) {
  if (!isNum(x)) return NONE;
  const range = interval(ci, fmt);
  return range === NONE ? fmt(x) : `${fmt(x)} (${range})`;
}

/** A number for a chart: the value, or null (Chart.js leaves a gap), never 0 for a missing figure. */
export function plot(x) {
  return isNum(x) ? x : null;
}

export { isNum };
