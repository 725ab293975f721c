// Who is paused (GET /api/projects/{id}/annotators/, every page) and the managers' un-pause button
// (POST /api/projects/{id}/annotators/{user_id}/unpause).

import { api, errorText } from "../lib/http.js";
import { button, make } from "../lib/dom.js";
import { pct } from "./format.js";

/** Every row of the paginated annotators list; null when it cannot be read (the page still shows the metrics). */
export async function loadAnnotators(project) {
  const rows = [];
  let url = `/api/projects/${project}/annotators/?page_size=1000`;
  while (url) {
    const res = await api("GET", url);
    if (res.status !== 200 || !res.data || !Array.isArray(res.data.results)) return null;
    rows.push(...res.data.results);
    url = res.data.next;
  }
  return rows;
}

/** {username: paused} of the annotators list (fresher than the cached metrics). */
export function pausedMap(rows) {
  return rows ? Object.fromEntries(rows.map((r) => [r.username, !!r.paused])) : null;
}

/** One line on a paused annotator: "ann: paused, gold accuracy 40.0 % over 12 answers". */
export function pausedText(row) {
  const answers = row.gold_answers ?? 0;
  return `${row.username}: paused, gold accuracy ${pct(row.gold_accuracy)} over ${answers} gold answer${answers === 1 ? "" : "s"}`;
}

/**
 * Fills `box` with the paused annotators; managers get an un-pause button per row. `onChange` runs after an
 * un-pause succeeded (the page reloads the list and redraws the table).
 */
export function renderPaused(box, rows, { project, canManage, onChange, say }) {
  box.replaceChildren();
  if (!rows) return;
  const paused = rows.filter((r) => r.paused);
  if (!paused.length) {
    box.append(make("p", "hint", "No annotator is paused."));
    return;
  }
  box.append(make("h3", null, "Paused annotators"));
  if (!canManage) box.append(make("p", "hint", "A manager can un-pause them."));
  const ul = make("ul", "paused-list");
  for (const row of paused) {
    const li = make("li", null, pausedText(row));
    li.dataset.username = row.username;
    if (canManage) {
      const b = button("btn btn-small", "Un-pause");
      b.setAttribute("aria-label", `Un-pause ${row.username}`);
      b.addEventListener("click", async () => {
        b.disabled = true;
        const res = await api("POST", `/api/projects/${project}/annotators/${row.user_id}/unpause`);
        if (res.status >= 200 && res.status < 300) {
          say(`${row.username} is un-paused: their gold answers count again from now.`);
          onChange();
        } else {
          b.disabled = false;
          say(errorText(res.data, `Could not un-pause ${row.username} (HTTP ${res.status}).`), true);
        }
      });
      li.append(" ", b);
    }
    ul.append(li);
  }
  box.append(ul);
}
