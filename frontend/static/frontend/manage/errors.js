// Showing an API error on a manager page: its detail, then each {field, message} as a list item;
// inputs whose data-field names the field are marked aria-invalid.

import { make } from "../lib/dom.js";
import { errorLines } from "../lib/http.js";

/** An answer of api() as the error to show: the API's own, or one saying what went wrong. */
export function errorOf({ status, data }) {
  if (status === 0) return { detail: "The server could not be reached; nothing was saved.", errors: [] };
  if (!data || typeof data !== "object") return { detail: "Unexpected answer (HTTP " + status + ").", errors: [] };
  return data;
}

/** Shows an error in box (null clears it) and marks the inputs under scope it names. */
export function showErrors(box, scope, data) {
  scope.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
  box.textContent = "";
  if (!data) {
    box.hidden = true;
    return;
  }
  box.appendChild(make("p", "error-detail", data.detail || "Something went wrong."));
  const lines = errorLines(data);
  if (lines.length) {
    const list = make("ul");
    for (const line of lines) list.appendChild(make("li", null, line));
    box.appendChild(list);
  }
  for (const e of data.errors || []) {
    if (!e || !e.field) continue;
    const input = scope.querySelector('[data-field="' + CSS.escape(e.field) + '"]');
    if (input) input.setAttribute("aria-invalid", "true");
  }
  box.hidden = false;
}
