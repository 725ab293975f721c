// Manager pages: the project form with its label editor and the members table (manage_project.html),
// and the import page with its live progress bar (manage_import.html). Everything goes through the
// REST API with the session and the CSRF token; errors show the API's {"detail", "errors"} as text.
(function () {
  "use strict";

  function make(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  async function api(csrf, method, url, body) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET") headers["X-CSRFToken"] = csrf;
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      return { status: 0, data: { detail: "The server could not be reached; nothing was saved.", errors: [] } };
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (e) {
        data = { detail: "Unexpected answer (HTTP " + response.status + ").", errors: [] };
      }
    }
    return { status: response.status, data };
  }

  // Show an API error: the detail, then each {field, message}; mark inputs whose data-field matches.
  function showErrors(box, scope, data) {
    scope.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    box.textContent = "";
    if (!data) {
      box.hidden = true;
      return;
    }
    box.appendChild(make("p", "error-detail", data.detail || "Something went wrong."));
    const errors = data.errors || [];
    if (errors.length) {
      const list = make("ul");
      for (const e of errors) {
        list.appendChild(make("li", null, (e.field ? e.field + ": " : "") + e.message));
        if (e.field) {
          const input = scope.querySelector('[data-field="' + CSS.escape(e.field) + '"]');
          if (input) input.setAttribute("aria-invalid", "true");
        }
      }
      box.appendChild(list);
    }
    box.hidden = false;
  }

  // ------------------------------------------------------------------ project form + members

  function projectPage(root) {
    const config = JSON.parse(document.getElementById("manage-config").textContent);
    const csrf = root.dataset.csrf;
    const form = document.getElementById("project-form");
    const status = document.getElementById("project-status");
    const errorsBox = document.getElementById("project-errors");
    const rows = document.getElementById("label-rows");
    const fields = config.fields;
    let labels = (fields.labels || []).map((l) => ({ name: l.name, hotkey: l.hotkey || "", color: l.color || "" }));
    if (labels.length === 0) labels = [{ name: "", hotkey: "", color: "" }];
    const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    function fillSelect(id, choices, value) {
      const select = document.getElementById(id);
      for (const c of choices) {
        const option = make("option", null, c.label);
        option.value = c.value;
        if (c.value === value) option.selected = true;
        select.appendChild(option);
      }
    }
    fillSelect("f-task_type", config.choices.task_type, fields.task_type);
    fillSelect("f-review_policy", config.choices.review_policy, fields.review_policy);
    fillSelect("f-sampling", config.choices.sampling, fields.sampling);
    for (const name of ["name", "description", "annotations_per_item", "review_sample_rate", "exploration_rate", "guidelines"]) {
      const input = document.getElementById("f-" + name);
      if (input && fields[name] !== undefined && fields[name] !== null) input.value = fields[name];
    }
    const policy = document.getElementById("f-review_policy");
    const sampleField = document.getElementById("sample-rate-field");
    const syncPolicy = () => (sampleField.hidden = policy.value !== "sample");
    policy.addEventListener("change", syncPolicy);
    syncPolicy();

    function renderLabels(focus) {
      rows.textContent = "";
      labels.forEach((label, i) => {
        const tr = make("tr");
        tr.appendChild(make("td", null, i + 1));
        const nameCell = make("td");
        const name = make("input", "label-name");
        name.value = label.name;
        name.maxLength = 100;
        name.required = true;
        name.dataset.field = "labels[" + i + "].name";
        name.setAttribute("aria-label", "Label " + (i + 1) + " name");
        name.addEventListener("input", () => (label.name = name.value));
        nameCell.appendChild(name);
        tr.appendChild(nameCell);
        const keyCell = make("td");
        const key = make("input", "label-hotkey");
        key.value = label.hotkey;
        key.maxLength = 1;
        key.size = 2;
        key.dataset.field = "labels[" + i + "].hotkey";
        key.setAttribute("aria-label", "Label " + (i + 1) + " hotkey");
        key.addEventListener("input", () => (label.hotkey = key.value));
        keyCell.appendChild(key);
        tr.appendChild(keyCell);
        const colorCell = make("td");
        const color = make("input", "label-color");
        color.type = "color";
        color.value = label.color || palette[i % palette.length];
        label.color = color.value;
        color.dataset.field = "labels[" + i + "].color";
        color.setAttribute("aria-label", "Label " + (i + 1) + " color");
        color.addEventListener("input", () => (label.color = color.value));
        colorCell.appendChild(color);
        tr.appendChild(colorCell);
        const actions = make("td", "row-actions");
        const button = (text, title, disabled, action, role) => {
          const b = make("button", "btn btn-quiet", text);
          b.type = "button";
          b.setAttribute("aria-label", title);
          b.title = title;
          b.disabled = disabled;
          b.dataset.action = role;
          b.addEventListener("click", () => action());
          actions.appendChild(b);
        };
        const who = label.name ? "“" + label.name + "”" : "label " + (i + 1);
        button("↑", "Move " + who + " up", i === 0, () => move(i, -1), "up");
        button("↓", "Move " + who + " down", i === labels.length - 1, () => move(i, 1), "down");
        button("Remove", "Remove " + who, labels.length === 1, () => remove(i), "remove");
        tr.appendChild(actions);
        rows.appendChild(tr);
      });
      if (focus) {
        const target = rows.querySelector(focus);
        if (target) target.focus();
      }
    }

    function move(i, delta) {
      const j = i + delta;
      [labels[i], labels[j]] = [labels[j], labels[i]];
      // keep focus on the same button of the moved row, or its other arrow once it reached an edge
      const edge = delta < 0 ? j === 0 : j === labels.length - 1;
      const action = (delta < 0) !== edge ? "up" : "down";
      renderLabels("tr:nth-child(" + (j + 1) + ") [data-action=" + action + "]");
    }

    function remove(i) {
      labels.splice(i, 1);
      renderLabels("tr:nth-child(" + Math.min(i + 1, labels.length) + ") .label-name");
    }

    document.getElementById("label-add").addEventListener("click", () => {
      labels.push({ name: "", hotkey: "", color: palette[labels.length % palette.length] });
      renderLabels("tr:last-child .label-name");
    });
    renderLabels();

    function number(id) {
      const raw = document.getElementById(id).value;
      return raw === "" ? undefined : Number(raw);
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {
        name: document.getElementById("f-name").value,
        description: document.getElementById("f-description").value,
        task_type: document.getElementById("f-task_type").value,
        labels: labels.map((l) => {
          const out = { name: l.name.trim() };
          if (l.hotkey) out.hotkey = l.hotkey;
          if (l.color) out.color = l.color;
          return out;
        }),
        annotations_per_item: number("f-annotations_per_item"),
        review_policy: policy.value,
        sampling: document.getElementById("f-sampling").value,
        exploration_rate: number("f-exploration_rate"),
        guidelines: document.getElementById("f-guidelines").value,
      };
      const rate = number("f-review_sample_rate");
      if (rate !== undefined) body.review_sample_rate = rate;
      for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
      const save = document.getElementById("project-save");
      save.disabled = true;
      status.textContent = "Saving…";
      const creating = config.project === null;
      const url = creating ? "/api/projects/" : "/api/projects/" + config.project + "/";
      const { status: code, data } = await api(csrf, creating ? "POST" : "PATCH", url, body);
      save.disabled = false;
      if (code === 201 && creating) {
        status.textContent = "Created. Opening its settings…";
        window.location.assign("/projects/" + data.id + "/settings");
        return;
      }
      if (code === 200) {
        showErrors(errorsBox, form, null);
        labels = data.labels.map((l) => ({ name: l.name, hotkey: l.hotkey || "", color: l.color || "" }));
        renderLabels();
        status.textContent = "Saved.";
        return;
      }
      status.textContent = "";
      showErrors(errorsBox, form, data);
    });

    if (config.project !== null) membersSection(config, csrf);
  }

  function membersSection(config, csrf) {
    const tbody = document.getElementById("member-rows");
    const status = document.getElementById("members-status");
    const errorsBox = document.getElementById("members-errors");
    const form = document.getElementById("member-form");
    const base = "/api/projects/" + config.project + "/members/";
    const roleSelect = document.getElementById("m-role");
    for (const c of config.choices.role) {
      const option = make("option", null, c.label);
      option.value = c.value;
      roleSelect.appendChild(option);
    }

    async function load() {
      const { status: code, data } = await api(csrf, "GET", base + "?page_size=1000");
      if (code !== 200) {
        showErrors(errorsBox, form, data);
        return;
      }
      tbody.textContent = "";
      for (const m of data.results) {
        const tr = make("tr");
        tr.dataset.username = m.username;
        tr.appendChild(make("th", null, m.username)).scope = "row";
        const roleCell = make("td");
        const select = make("select");
        select.setAttribute("aria-label", "Role of " + m.username);
        for (const c of config.choices.role) {
          const option = make("option", null, c.label);
          option.value = c.value;
          option.selected = c.value === m.role;
          select.appendChild(option);
        }
        select.addEventListener("change", async () => {
          const r = await api(csrf, "PATCH", base + m.user_id + "/", { role: select.value });
          if (r.status === 200) {
            showErrors(errorsBox, form, null);
            status.textContent = m.username + " is now " + r.data.role + ".";
          } else {
            showErrors(errorsBox, form, r.data);
            select.value = m.role;
          }
        });
        roleCell.appendChild(select);
        tr.appendChild(roleCell);
        const removeCell = make("td");
        const remove = make("button", "btn btn-quiet", "Remove");
        remove.type = "button";
        remove.setAttribute("aria-label", "Remove " + m.username);
        remove.addEventListener("click", async () => {
          const r = await api(csrf, "DELETE", base + m.user_id + "/");
          if (r.status === 204) {
            showErrors(errorsBox, form, null);
            status.textContent = m.username + " was removed.";
            await load();
          } else {
            showErrors(errorsBox, form, r.data);
          }
        });
        removeCell.appendChild(remove);
        tr.appendChild(removeCell);
        tbody.appendChild(tr);
      }
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const username = document.getElementById("m-username").value.trim();
      const r = await api(csrf, "POST", base, { username, role: roleSelect.value });
      if (r.status === 201) {
        showErrors(errorsBox, form, null);
        status.textContent = r.data.username + " added as " + r.data.role + ".";
        form.reset();
        await load();
      } else {
        showErrors(errorsBox, form, r.data);
      }
    });
    load();
  }

  // ------------------------------------------------------------------ import with a live progress bar

  function importPage(root) {
    const csrf = root.dataset.csrf;
    const project = root.dataset.project;
    const form = document.getElementById("import-form");
    const errorsBox = document.getElementById("import-errors");
    const jobBox = document.getElementById("import-job");
    const bar = document.getElementById("import-progress");
    const text = document.getElementById("import-progress-text");
    const resultBox = document.getElementById("import-result");
    const start = document.getElementById("import-start");

    function showResult(job) {
      const result = job.result || {};
      document.getElementById("import-created").textContent = result.created ?? 0;
      document.getElementById("import-duplicates").textContent = result.duplicates ?? 0;
      document.getElementById("import-error-count").textContent = result.error_count ?? (result.errors || []).length;
      const rowsBody = document.getElementById("import-error-rows");
      rowsBody.textContent = "";
      for (const e of result.errors || []) {
        const tr = make("tr");
        tr.appendChild(make("td", null, e.line ?? ""));
        tr.appendChild(make("td", null, e.field ?? ""));
        tr.appendChild(make("td", null, e.message));
        rowsBody.appendChild(tr);
      }
      document.getElementById("import-error-table").hidden = (result.errors || []).length === 0;
      resultBox.hidden = false;
    }

    function showErrorRows(errors) {
      // a file rejected at once (400) lists its rows like a finished Job does
      showResult({ result: { created: 0, duplicates: 0, errors, error_count: errors.length } });
    }

    async function poll(jobId) {
      for (;;) {
        const { status, data } = await api(csrf, "GET", "/api/jobs/" + jobId);
        if (status !== 200) {
          showErrors(errorsBox, form, data);
          return;
        }
        if (data.total) {
          bar.max = data.total;
          bar.value = Math.min(data.progress, data.total);
        }
        const pct = data.total ? Math.floor((100 * Math.min(data.progress, data.total)) / data.total) : 0;
        root.dataset.jobStatus = data.status;
        if (data.status === "succeeded" || data.status === "failed") {
          bar.value = bar.max;
          text.textContent =
            data.status === "succeeded" ? "Done." : "The import failed: " + (data.error || "see the rows below") + ". Nothing was imported.";
          jobBox.classList.add(data.status);
          showResult(data);
          start.disabled = false;
          return;
        }
        text.textContent = data.status === "queued" ? "Waiting for a worker…" : "Importing… " + pct + "%";
        await new Promise((resolve) => setTimeout(resolve, 400));
      }
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = document.getElementById("import-file");
      if (!input.files.length) {
        showErrors(errorsBox, form, { detail: "Choose a file to import.", errors: [{ field: "file", message: "Required." }] });
        return;
      }
      const file = input.files[0];
      const body = new FormData();
      body.append("file", file);
      const onError = document.getElementById("import-on-error").value;
      showErrors(errorsBox, form, null);
      resultBox.hidden = true;
      jobBox.hidden = false;
      jobBox.classList.remove("succeeded", "failed");
      document.getElementById("import-filename").textContent = file.name;
      bar.removeAttribute("value");
      text.textContent = "Uploading…";
      start.disabled = true;
      const { status, data } = await api(csrf, "POST", "/api/projects/" + project + "/import?on_error=" + encodeURIComponent(onError), body);
      if (status === 202) {
        bar.value = 0;
        root.dataset.job = data.job;
        await poll(data.job);
        return;
      }
      start.disabled = false;
      jobBox.hidden = true;
      showErrors(errorsBox, form, data);
      const rowErrors = ((data && data.errors) || []).filter((e) => e.line !== undefined);
      if (rowErrors.length) showErrorRows(rowErrors);
    });
  }

  const project = document.getElementById("manage-project");
  if (project) projectPage(project);
  const imports = document.getElementById("manage-import");
  if (imports) importPage(imports);
})();
