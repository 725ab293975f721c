// DOM building blocks of the dashboard: tables with their CSV download, chart boxes, headline figures and
// empty states. Every text goes in as text (textContent), never as HTML.

import { button, make } from "../lib/dom.js";
import { csvName, download, tableCsv } from "./csv.js";
import { draw } from "./charts.js";

/** Drawing state of the page: whether a chart could not be drawn (Chart.js missing). */
export const charts = { missing: false };

/** A table (inside a focusable, scrollable region) with a "Download CSV" button built from the same rows. */
export function tableBlock(spec, project) {
  const wrap = make("div", "table-block");
  const head = make("div", "table-tools");
  const csv = button("btn btn-small", "Download CSV");
  csv.setAttribute("aria-label", `Download CSV: ${spec.caption}`);
  csv.dataset.csv = spec.id;
  csv.addEventListener("click", () => download(csvName("project", project, spec.id), tableCsv(spec)));
  head.append(csv);

  const region = make("div", "table-scroll");
  region.tabIndex = 0; // scrollable regions must be reachable by keyboard
  region.setAttribute("role", "region");
  region.setAttribute("aria-label", spec.caption);
  const table = make("table", "table compact");
  table.id = `table-${spec.id}`;
  table.append(make("caption", null, spec.caption));
  const thead = make("thead");
  const tr = make("tr");
  for (const c of spec.columns) {
    const th = make("th", c.num ? "num" : null, c.label);
    th.scope = "col";
    tr.append(th);
  }
  thead.append(tr);
  const tbody = make("tbody");
  for (const row of spec.rows) {
    const r = make("tr");
    spec.columns.forEach((c, i) => {
      const cell = make(i === 0 ? "th" : "td", c.num ? "num" : null, c.text(row));
      if (i === 0) cell.scope = "row";
      if (c.flag && c.flag(row)) {
        cell.classList.add("flagged");
        cell.append(" ", make("span", "flag", "worse"));
      }
      r.append(cell);
    });
    tbody.append(r);
  }
  if (!spec.rows.length) {
    const r = make("tr");
    const td = make("td", "muted", "No rows.");
    td.colSpan = spec.columns.length;
    r.append(td);
    tbody.append(r);
  }
  table.append(thead, tbody);
  region.append(table);
  wrap.append(head, region);
  return wrap;
}

/**
 * A chart: a canvas with a text alternative (the table next to it holds the numbers). Drawn once it is in the
 * document (Chart.js sizes it from its container): call the returned element's `draw()` after appending it.
 */
export function chartBlock(label, config) {
  const box = make("div", "chart-box");
  const canvas = make("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `${label} (chart; the numbers are in the table)`);
  canvas.textContent = `${label}: see the table.`;
  box.append(canvas);
  box.draw = () => {
    if (!draw(canvas, config)) {
      charts.missing = true;
      box.hidden = true;
    }
  };
  return box;
}

/** Headline figures as a definition list: [[term, value text], ...]. */
export function figures(pairs) {
  const dl = make("dl", "figures");
  for (const [term, value] of pairs) {
    const div = make("div");
    div.append(make("dt", null, term), make("dd", null, value));
    dl.append(div);
  }
  return dl;
}

export function emptyNote(text) {
  return make("p", "empty panel-empty", text);
}

/** Replaces a panel's body with `nodes`, draws its charts and marks it loaded. */
export function fill(panel, nodes) {
  const body = panel.querySelector(".panel-body");
  body.replaceChildren(...nodes.filter(Boolean));
  for (const box of body.querySelectorAll(".chart-box")) box.draw && box.draw();
  panel.setAttribute("aria-busy", "false");
}
