// The project settings page (manage_project.html): the project form with its label editor, and the
// members table (members.js). Writes go through the REST API; errors show as errors.js does.

import { $, button, fillSelect, make } from "../lib/dom.js";
import { api } from "../lib/http.js";
import { errorOf, showErrors } from "./errors.js";
import { PALETTE, labelsPayload, moveRow, newRow, rowsFrom } from "./labels.js";
import { membersSection } from "./members.js";

export function projectPage(config) {
  const form = $("project-form");
  const status = $("project-status");
  const errorsBox = $("project-errors");
  const rows = $("label-rows");
  const fields = config.fields;
  let labels = rowsFrom(fields.labels);

  fillSelect($("f-task_type"), config.choices.task_type, fields.task_type);
  fillSelect($("f-review_policy"), config.choices.review_policy, fields.review_policy);
  fillSelect($("f-sampling"), config.choices.sampling, fields.sampling);
  for (const name of ["name", "description", "license", "annotations_per_item", "review_sample_rate", "exploration_rate", "guidelines"]) {
    const input = $("f-" + name);
    if (input && fields[name] !== undefined && fields[name] !== null) input.value = fields[name];
  }
  const policy = $("f-review_policy");
  const sampleField = $("sample-rate-field");
  const syncPolicy = () => (sampleField.hidden = policy.value !== "sample");
  policy.addEventListener("change", syncPolicy);
  syncPolicy();

  function input(cls, label, i, key, attrs) {
    const node = make("input", cls);
    Object.assign(node, attrs);
    node.value = label[key];
    if (key === "color") label[key] = node.value; // as the color input normalized it
    node.dataset.field = "labels[" + i + "]." + key;
    node.setAttribute("aria-label", "Label " + (i + 1) + " " + (key === "name" ? "name" : key));
    node.addEventListener("input", () => (label[key] = node.value));
    const cell = make("td");
    cell.appendChild(node);
    return cell;
  }

  function renderLabels(focus) {
    rows.textContent = "";
    labels.forEach((label, i) => {
      const tr = make("tr");
      tr.appendChild(make("td", null, i + 1));
      tr.appendChild(input("label-name", label, i, "name", { maxLength: 100, required: true }));
      tr.appendChild(input("label-hotkey", label, i, "hotkey", { maxLength: 1, size: 2 }));
      label.color = label.color || PALETTE[i % PALETTE.length];
      tr.appendChild(input("label-color", label, i, "color", { type: "color" }));
      const actions = make("td", "row-actions");
      const rowButton = (text, title, disabled, action, role) => {
        const b = button("btn btn-quiet", text);
        b.setAttribute("aria-label", title);
        b.title = title;
        b.disabled = disabled;
        b.dataset.action = role;
        b.addEventListener("click", () => action());
        actions.appendChild(b);
      };
      const who = label.name ? "“" + label.name + "”" : "label " + (i + 1);
      rowButton("↑", "Move " + who + " up", i === 0, () => move(i, -1), "up");
      rowButton("↓", "Move " + who + " down", i === labels.length - 1, () => move(i, 1), "down");
      rowButton("Remove", "Remove " + who, labels.length === 1, () => remove(i), "remove");
      tr.appendChild(actions);
      rows.appendChild(tr);
    });
    if (focus) {
      const target = rows.querySelector(focus);
      if (target) target.focus();
    }
  }

  function move(i, delta) {
    const [j, action] = moveRow(labels, i, delta);
    renderLabels("tr:nth-child(" + (j + 1) + ") [data-action=" + action + "]");
  }

  function remove(i) {
    labels.splice(i, 1);
    renderLabels("tr:nth-child(" + Math.min(i + 1, labels.length) + ") .label-name");
  }

  $("label-add").addEventListener("click", () => {
    labels.push(newRow(labels.length));
    renderLabels("tr:last-child .label-name");
  });
  renderLabels();

  function number(id) {
    const raw = $(id).value;
    return raw === "" ? undefined : Number(raw);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      name: $("f-name").value,
      description: $("f-description").value,
      task_type: $("f-task_type").value,
      labels: labelsPayload(labels),
      annotations_per_item: number("f-annotations_per_item"),
      review_policy: policy.value,
      sampling: $("f-sampling").value,
      exploration_rate: number("f-exploration_rate"),
      guidelines: $("f-guidelines").value,
    };
    // the license is sent when the API has it (it is in the project's fields) or the user typed one
    const license = $("f-license").value.trim();
    if ("license" in fields || license !== "") body.license = license;
    const rate = number("f-review_sample_rate");
    if (rate !== undefined) body.review_sample_rate = rate;
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    const save = $("project-save");
    save.disabled = true;
    status.textContent = "Saving…";
    const creating = config.project === null;
    const url = creating ? "/api/projects/" : "/api/projects/" + config.project + "/";
    const res = await api(creating ? "POST" : "PATCH", url, { body });
    save.disabled = false;
    if (res.status === 201 && creating) {
      status.textContent = "Created. Opening its settings…";
      window.location.assign("/projects/" + res.data.id + "/settings");
      return;
    }
    if (res.status === 200) {
      showErrors(errorsBox, form, null);
      labels = rowsFrom(res.data.labels);
      renderLabels();
      status.textContent = "Saved.";
      return;
    }
    status.textContent = "";
    showErrors(errorsBox, form, errorOf(res));
  });

  if (config.project !== null) membersSection(config);
}
