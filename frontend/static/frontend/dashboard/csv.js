// CSV downloads built in the browser from the same JSON the tables show.

// a spreadsheet runs a cell that starts with one of these as a formula: the same rule as the export's csv_safe
// (annotation/selectors/exporting.py), a leading ' makes it text
const FORMULA_START = ["=", "+", "-", "@", "\t", "\r"];

/** A text cell as a spreadsheet will show it, never run it. Numbers stay numbers (a negative kappa is data). */
export function csvSafe(cell) {
  if (cell === null || cell === undefined) return "";
  if (typeof cell === "number") return Number.isFinite(cell) ? String(cell) : "";
  if (typeof cell === "boolean") return cell ? "true" : "false";
  const text = typeof cell === "string" ? cell : JSON.stringify(cell);
  return FORMULA_START.some((c) => text.startsWith(c)) ? `'${text}` : text;
}

/** One CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
function field(text) {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The CSV text (CRLF line ends, as RFC 4180 and the server's csv module write) of a header and rows of cells. */
export function toCsv(header, rows) {
  return [header, ...rows].map((cells) => cells.map((c) => field(csvSafe(c))).join(",")).join("\r\n") + "\r\n";
}

/** The CSV of a table spec (tables.js): one column per spec column, the raw values (not the formatted text). */
export function tableCsv(spec) {
  const header = spec.columns.flatMap((c) => (c.csv ? c.csv.map((x) => x.label) : [c.label]));
  const rows = spec.rows.map((row) =>
    spec.columns.flatMap((c) => (c.csv ? c.csv.map((x) => x.value(row)) : [c.value(row)])),
  );
  return toCsv(header, rows);
}

/** A file name for a table's CSV: letters, digits, dots, dashes and underscores only. */
export function csvName(...parts) {
  return (
    parts
      .filter((p) => p !== null && p !== undefined && p !== "")
      .map((p) => String(p).replace(/[^A-Za-z0-9._-]+/g, "-"))
      .join("-") + ".csv"
  );
}

/** Starts the download of `text` as `name` (a Blob URL: nothing goes back to the server). */
export function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
