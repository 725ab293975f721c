// The members table of the project settings page: list, change a role, remove, add.

import { $, button, fillSelect, make } from "../lib/dom.js";
import { api } from "../lib/http.js";
import { errorOf, showErrors } from "./errors.js";

export function membersSection(config) {
  const tbody = $("member-rows");
  const status = $("members-status");
  const errorsBox = $("members-errors");
  const form = $("member-form");
  const base = "/api/projects/" + config.project + "/members/";
  const roleSelect = $("m-role");
  fillSelect(roleSelect, config.choices.role);

  function row(m) {
    const tr = make("tr");
    tr.dataset.username = m.username;
    tr.appendChild(make("th", null, m.username)).scope = "row";
    const roleCell = make("td");
    const select = make("select");
    select.setAttribute("aria-label", "Role of " + m.username);
    fillSelect(select, config.choices.role, m.role);
    select.addEventListener("change", async () => {
      const r = await api("PATCH", base + m.user_id + "/", { body: { role: select.value } });
      if (r.status === 200) {
        showErrors(errorsBox, form, null);
        status.textContent = m.username + " is now " + r.data.role + ".";
      } else {
        showErrors(errorsBox, form, errorOf(r));
        select.value = m.role;
      }
    });
    roleCell.appendChild(select);
    tr.appendChild(roleCell);
    const removeCell = make("td");
    const remove = button("btn btn-quiet", "Remove");
    remove.setAttribute("aria-label", "Remove " + m.username);
    remove.addEventListener("click", async () => {
      const r = await api("DELETE", base + m.user_id + "/");
      if (r.status === 204) {
        showErrors(errorsBox, form, null);
        status.textContent = m.username + " was removed.";
        await load();
      } else {
        showErrors(errorsBox, form, errorOf(r));
      }
    });
    removeCell.appendChild(remove);
    tr.appendChild(removeCell);
    return tr;
  }

  async function load() {
    const r = await api("GET", base + "?page_size=1000");
    if (r.status !== 200) {
      showErrors(errorsBox, form, errorOf(r));
      return;
    }
    tbody.replaceChildren(...r.data.results.map(row));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("m-username").value.trim();
    const r = await api("POST", base, { body: { username, role: roleSelect.value } });
    if (r.status === 201) {
      showErrors(errorsBox, form, null);
      status.textContent = r.data.username + " added as " + r.data.role + ".";
      form.reset();
      await load();
    } else {
      showErrors(errorsBox, form, errorOf(r));
    }
  });
  load();
}
