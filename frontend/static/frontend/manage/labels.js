// The label editor's rows (name, hotkey, color) on the project settings page. Pure: no DOM.

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/** Editor rows from the API's labels; one empty row when there are none. */
export function rowsFrom(labels) {
  const rows = (labels || []).map((l) => ({ name: l.name, hotkey: l.hotkey || "", color: l.color || "" }));
  return rows.length ? rows : [{ name: "", hotkey: "", color: "" }];
}

/** A new row, colored from the palette by its position. */
export const newRow = (count) => ({ name: "", hotkey: "", color: PALETTE[count % PALETTE.length] });

/** The labels as the API takes them: names trimmed, empty hotkeys and colors left out. */
export function labelsPayload(rows) {
  return rows.map((l) => {
    const out = { name: l.name.trim() };
    if (l.hotkey) out.hotkey = l.hotkey;
    if (l.color) out.color = l.color;
    return out;
  });
}

/**
 * Moves row i by delta (±1) in place. Returns [j, button]: the row's new index and which of its
 * arrow buttons keeps the focus — the same one, or the other once the row reached an edge.
 */
export function moveRow(rows, i, delta) {
  const j = i + delta;
  [rows[i], rows[j]] = [rows[j], rows[i]];
  const edge = delta < 0 ? j === 0 : j === rows.length - 1;
  return [j, delta < 0 !== edge ? "up" : "down"];
}
