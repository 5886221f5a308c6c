/* Common-Operations dashboard: the pages' behaviour, hand-written, no dependencies.
 * Every change goes through the JSON API (the same use cases as any client). Requests carry
 * X-Ops-UI: 1 (see service/ui/devlogin.py: the dev login's cookie counts only with it). */
"use strict";

const API = "/api/v1/operations";
const FINAL = ["completed", "failed", "cancelled"];
const MARKS = {waiting: "⧗", scheduled: "◷", pending: "…", processing: "▶", completed: "✔",
  failed: "✖", cancelled: "⊘"};

/** The JSON API's answer. A problem becomes an Error whose message names its fields (or, with
 * fieldsInMessage false, is the problem's detail alone) and whose `fieldErrors` lists them, for
 * a form to show each by its field. */
async function api(method, path, body, {fieldsInMessage = true} = {}) {
  const init = {method, headers: {"X-Ops-UI": "1", "Accept": "application/json"},
    credentials: "same-origin"};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const errors = (data && data.errors) || [];
    const detail = fieldsInMessage && errors.length
      ? errors.map((e) => `${e.field}: ${e.reason}`).join("; ")
      : data && data.detail;
    const error = new Error(detail || `${response.status} ${response.statusText}`);
    error.fieldErrors = errors;
    throw error;
  }
  return data;
}

function flash(text, isError) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = text;
  box.className = isError ? "error" : "ok";
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v; else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) node.append(child);
  return node;
}

function badge(status, cancelRequested) {
  return el("span", {class: `badge s-${status}`, "data-status": status},
    el("span", {"aria-hidden": "true", text: MARKS[status] || ""}),
    ` ${status}${cancelRequested && status === "processing" ? " (cancelling)" : ""}`);
}

function seconds(s) {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Progress text and ETA of a task (from its start and its percentage so far). */
function paintProgress(box, task) {
  if (!box) return;
  const bar = box.querySelector("progress");
  bar.value = task.progress;
  bar.textContent = `${task.progress}%`;
  let text = `${task.progress}%`;
  if (task.totalItems) text += ` · ${task.processedItems}/${task.totalItems}`;
  else if (task.processedItems) text += ` · ${task.processedItems} done`;
  if (task.failedItems) text += ` · ${task.failedItems} failed`;
  box.querySelector(".progress-text").textContent = text;
  let eta = "";
  if (task.status === "processing" && task.startedAt && task.progress > 0 && task.progress < 100) {
    const elapsed = (Date.now() - Date.parse(task.startedAt)) / 1000;
    eta = `ETA ${seconds(elapsed * (100 - task.progress) / task.progress)}`;
  }
  box.querySelector(".eta").textContent = eta;
}

/** Follows one of the JSON API's Server-Sent Event streams (GET /tasks/{id}/stream,
 * GET /tasks/stream): calls `onEvent(name, data)` for each event, and after the stream ends or
 * fails reconnects with the last id it saw (Last-Event-ID), so nothing is missed. Read with
 * fetch, not EventSource: EventSource cannot send the X-Ops-UI header the dev login's cookie
 * needs (service/ui/devlogin.py). Returns stop(). */
function followStream(path, onEvent) {
  let stopped = false;
  let controller = null;
  let lastId = null;
  function dispatch(block) {
    let name = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;  // keep-alive comments
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      let value = at < 0 ? "" : line.slice(at + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    if (id !== null) lastId = id;
    onEvent(name, JSON.parse(data.join("\n")));
  }
  async function read() {
    controller = new AbortController();
    const headers = {"X-Ops-UI": "1", "Accept": "text/event-stream"};
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const response = await fetch(API + path, {headers, credentials: "same-origin",
      signal: controller.signal});
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done || stopped) return;
      buffer += value;
      // lines may end with \r\n: a \r at a chunk's end waits for the next chunk's \n
      const held = buffer.endsWith("\r") ? "\r" : "";
      buffer = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
      buffer += held;
    }
  }
  (async () => {
    while (!stopped) {
      try { await read(); } catch (error) { /* the API away or restarting: try again */ }
      if (!stopped) await new Promise((resume) => setTimeout(resume, 1000));
    }
  })();
  return () => { stopped = true; if (controller) controller.abort(); };
}

/** A task stream or the list stream as task snapshots: `onTasks(tasks)` for the first
 * snapshot and for each change, `onLog(line)` for a task stream's new log lines. */
function streamTasks(path, onTasks, onLog) {
  return followStream(path, (name, data) => {
    if (name === "snapshot") onTasks(data.items || [data.task]);
    else if (name === "log") { if (onLog) onLog(data.log); }
    else if (data.task) onTasks([data.task]);
  });
}

/** Polls: `onTasks(fetchTasks())` every `everyMs` (the queues have no stream). Returns stop(). */
function liveTasks(fetchTasks, onTasks, everyMs = 2000) {
  let stopped = false;
  let timer = null;
  async function tick() {
    if (stopped) return;
    try { onTasks(await fetchTasks()); } catch (error) { /* next tick tries again */ }
    if (!stopped) timer = setTimeout(tick, everyMs);
  }
  timer = setTimeout(tick, everyMs);
  return () => { stopped = true; clearTimeout(timer); };
}

async function confirmDialog(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const yes = document.getElementById("confirm-yes");
    const no = document.getElementById("confirm-no");
    function done(answer) {
      yes.onclick = no.onclick = null;
      dialog.close();
      resolve(answer);
    }
    yes.onclick = () => done(true);
    no.onclick = () => done(false);
    dialog.addEventListener("cancel", () => resolve(false), {once: true});
    dialog.showModal();
    yes.focus();
  });
}

/* ---- Tasks list ------------------------------------------------------------------------ */
function tasksPage() {
  const table = document.getElementById("tasks");
  const query = table.dataset.apiQuery;
  const rows = () => [...table.querySelectorAll("tbody tr[data-id]")];
  const anyLive = () => rows().some((r) => !FINAL.includes(r.dataset.status));
  const filters = new URLSearchParams(query);
  for (const paging of ["page", "cursor"]) filters.delete(paging);
  if (anyLive()) streamTasks(`/tasks/stream?${filters}`,
    (tasks) => {
      for (const task of tasks) {
        const row = table.querySelector(`tr[data-id="${task.id}"]`);
        if (!row) continue;
        if (row.dataset.status !== task.status) {
          row.dataset.status = task.status;
          row.querySelector(".status").replaceChildren(badge(task.status, task.cancelRequested));
        }
        paintProgress(row.querySelector("[data-progress]"), task);
      }
    });
  document.getElementById("select-all").addEventListener("change", (event) => {
    for (const box of table.querySelectorAll(".pick")) box.checked = event.target.checked;
  });
  const action = () => document.getElementById("bulk-action").value;
  const label = (a) => ({cancel: "cancelled", retry: "retried", run: "started now"})[a];
  async function run(body, what) {
    try {
      const preview = await api("POST", "/tasks:bulk", {...body, preview: true});
      if (preview.eligible > preview.limit) {
        flash(`More than ${preview.limit} tasks would be ${label(body.action)}: narrow the filter.`, true);
        return;
      }
      const ok = await confirmDialog(
        `${preview.matched} tasks ${what}; ${preview.eligible} of them will be ` +
        `${label(body.action)}. Continue?`);
      if (!ok) return;
      const done = await api("POST", "/tasks:bulk", body);
      flash(`${done.changed} tasks ${label(body.action)}` +
        (done.skipped ? `, ${done.skipped} skipped (they changed meanwhile)` : "") + ".");
      setTimeout(() => location.reload(), 1200);
    } catch (error) { flash(error.message, true); }
  }
  document.getElementById("bulk-selected").addEventListener("click", () => {
    const ids = [...table.querySelectorAll(".pick:checked")].map((b) => b.value);
    if (!ids.length) { flash("Select tasks first.", true); return; }
    run({action: action(), ids}, "are selected");
  });
  document.getElementById("bulk-filter").addEventListener("click", () => {
    run({action: action(), filter: JSON.parse(table.dataset.filter || "{}")}, "match the filter");
  });
}

/* ---- Task page ------------------------------------------------------------------------- */
async function download(path) {
  try {
    const link = await api("GET", path);
    location.assign(link.downloadUrl);
  } catch (error) { flash(error.message, true); }
}

function renderLogs(list, items) {
  list.replaceChildren(...(items.length ? items.map((l) => el("li", {class: `log-${l.level}`},
    el("time", {text: l.createdAt.replace("T", " ").slice(0, 19)}), " ",
    el("span", {class: "level", text: l.level.toUpperCase()}), ` ${l.message}`))
    : [el("li", {class: "muted", text: "No log lines."})]));
}

function taskPage() {
  const box = document.getElementById("task");
  const id = box.dataset.id;
  let total = Number(box.dataset.logTotal);
  const level = document.getElementById("log-level");
  const tail = document.getElementById("log-tail");
  const logs = document.getElementById("logs");
  async function loadLogs() {
    const size = 200;
    const q = level.value ? `&level=${level.value}` : "";
    const first = await api("GET", `/tasks/${id}/logs?pageSize=1${q}`);
    total = first.total;
    const page = Math.max(1, Math.ceil(total / size));
    const answer = await api("GET", `/tasks/${id}/logs?pageSize=${size}&page=${page}${q}`);
    renderLogs(logs, answer.items);
  }
  level.addEventListener("change", () => loadLogs().catch((e) => flash(e.message, true)));
  if (box.dataset.final !== "true") {
    const stop = streamTasks(`/tasks/${id}/stream`, ([task]) => {
      paintProgress(box.querySelector("[data-progress]"), task);
      if (task.status !== box.dataset.status || task.cancelRequested) {
        if (task.status !== box.dataset.status) { stop(); location.reload(); return; }
        document.getElementById("status").replaceChildren(badge(task.status, true));
      }
    }, () => { if (tail.checked) loadLogs().catch(() => {}); });
  }
  for (const button of document.querySelectorAll("#task-actions button[data-action]")) {
    button.addEventListener("click", async () => {
      const what = button.dataset.action;
      try {
        if (what === "delete") {
          if (!(window.confirm("Delete this task?"))) return;
          await api("DELETE", `/tasks/${id}`);
          location.assign("/ui/tasks");
          return;
        }
        if (what === "run") await api("POST", "/tasks:bulk", {action: "run", ids: [id]});
        else await api("POST", `/tasks/${id}/${what}`);
        location.reload();
      } catch (error) { flash(error.message, true); }
    });
  }
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => download(`/tasks/${id}/download?file=${button.dataset.download}`));
  }
  for (const button of document.querySelectorAll("[data-file-id]")) {
    button.addEventListener("click", () => download(`/files/${button.dataset.fileId}/download`));
  }
}

/* ---- Forms from JSON Schema ------------------------------------------------------------ */
function resolve(schema, root) {
  if (schema && schema.$ref) return resolve(root.$defs[schema.$ref.split("/").pop()], root);
  if (schema && schema.anyOf) {
    const kept = schema.anyOf.filter((s) => s.type !== "null");
    if (kept.length === 1) return {...resolve(kept[0], root), nullable: true,
      description: schema.description, default: schema.default, title: schema.title};
  }
  return schema || {};
}

/** Inputs for each property of an object schema; returns read(), which builds the value. */
function schemaFields(container, schema, prefix) {
  container.querySelectorAll(".generated").forEach((n) => n.remove());
  const readers = [];
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    const prop = resolve(raw, schema);
    const id = `${prefix}-${name}`;
    const wrap = el("div", {class: "generated field"});
    const label = el("label", {for: id, text: prop.title || name});
    const help = prop.description ? el("small", {id: `${id}-help`, text: prop.description}) : null;
    let input;
    let read;
    const type = prop.type;
    if (prop.enum || prop.const) {
      input = el("select", {id});
      if (prop.nullable) input.append(el("option", {value: "", text: "—"}));
      for (const v of prop.enum || [prop.const]) {
        input.append(el("option", {value: v, text: v, selected: v === prop.default}));
      }
      read = () => input.value === "" ? undefined : input.value;
    } else if (type === "boolean") {
      input = el("input", {id, type: "checkbox", checked: prop.default === true});
      read = () => input.checked === (prop.default === true) ? undefined : input.checked;
    } else if (type === "integer" || type === "number") {
      input = el("input", {id, type: "number", step: type === "integer" ? "1" : "any",
        min: prop.minimum ?? prop.exclusiveMinimum, max: prop.maximum ?? prop.exclusiveMaximum,
        placeholder: prop.default ?? ""});
      read = () => input.value === "" ? undefined : Number(input.value);
    } else if (type === "string") {
      input = el("input", {id, maxlength: prop.maxLength, pattern: prop.pattern,
        placeholder: prop.default ?? ""});
      read = () => input.value === "" ? undefined : input.value;
    } else if (type === "array" && resolve(prop.items, schema).type === "string") {
      input = el("input", {id, placeholder: "comma-separated"});
      read = () => input.value.trim() === "" ? undefined
        : input.value.split(",").map((s) => s.trim()).filter(Boolean);
    } else {
      input = el("textarea", {id, rows: "3", placeholder: "JSON"});
      read = () => input.value.trim() === "" ? undefined : JSON.parse(input.value);
    }
    if (help) input.setAttribute("aria-describedby", help.id);
    if ((schema.required || []).includes(name)) input.required = true;
    wrap.append(label, input);
    if (help) wrap.append(help);
    container.append(wrap);
    readers.push([name, read]);
  }
  return () => {
    const value = {};
    for (const [name, read] of readers) {
      const v = read();
      if (v !== undefined) value[name] = v;
    }
    return value;
  };
}

function entityField(container, type, id) {
  container.replaceChildren();
  if (!type.entityTypes) return () => undefined;
  const select = el("select", {id, required: true});
  for (const e of type.entityTypes) select.append(el("option", {value: e, text: e}));
  container.append(el("label", {for: id, text: "Entity"}), select);
  return () => select.value;
}

function showErrors(error) {
  const box = document.getElementById("form-errors");
  box.textContent = error ? error.message : "";
}

function newTaskPage() {
  const types = JSON.parse(document.getElementById("types").textContent)
    .filter((t) => !t.needsFile);
  const select = document.getElementById("task-type");
  for (const t of types) select.append(el("option", {value: t.taskType, text: t.taskType}));
  let readParams;
  let readEntity;
  function show() {
    const type = types.find((t) => t.taskType === select.value);
    document.getElementById("type-summary").textContent = type.summary;
    readEntity = entityField(document.getElementById("entity-field"), type, "task-entity");
    readParams = schemaFields(document.getElementById("params-fields"), type.paramsSchema, "p");
  }
  select.addEventListener("change", show);
  show();
  document.getElementById("new-task").addEventListener("submit", async (event) => {
    event.preventDefault();
    showErrors(null);
    try {
      const body = {taskType: select.value, params: readParams()};
      const entity = readEntity();
      if (entity) body.entityType = entity;
      const name = document.getElementById("task-name").value.trim();
      if (name) body.name = name;
      const tags = document.getElementById("task-tags").value.split(",").map((s) => s.trim())
        .filter(Boolean);
      if (tags.length) body.tags = tags;
      const when = document.getElementById("task-when").value;
      if (when) body.scheduledAt = new Date(when).toISOString();
      const task = await api("POST", "/tasks", body);
      location.assign(`/ui/tasks/${task.id}`);
    } catch (error) { showErrors(error); }
  });
}

function exportPage() {
  const type = JSON.parse(document.getElementById("types").textContent)
    .find((t) => t.taskType === "export");
  const readEntity = entityField(document.getElementById("entity-field"), type, "export-entity");
  const readParams = schemaFields(document.getElementById("params-fields"), type.paramsSchema, "x");
  document.getElementById("export-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showErrors(null);
    try {
      const task = await api("POST", "/tasks",
        {taskType: "export", entityType: readEntity(), params: readParams()});
      location.assign(`/ui/tasks/${task.id}`);
    } catch (error) { showErrors(error); }
  });
}

/* ---- Import wizard --------------------------------------------------------------------- */
function upload(url, headers, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [k, v] of Object.entries(headers || {})) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(`upload: ${xhr.status} ${xhr.responseText}`)));
    xhr.onerror = () => reject(new Error("upload failed"));
    xhr.send(file);
  });
}

function follow(id, onTask) {
  return new Promise((resolve) => {
    const stop = streamTasks(`/tasks/${id}/stream`, ([task]) => {
      onTask(task);
      if (FINAL.includes(task.status)) { stop(); resolve(task); }
    });
  });
}

function summary(dl, result, words) {
  dl.replaceChildren();
  for (const [key, label] of words) {
    dl.append(el("dt", {text: label}), el("dd", {"data-key": key, text: String(result?.[key] ?? 0)}));
  }
}

async function reportRows(id) {
  const link = await api("GET", `/tasks/${id}/download?file=errorReport`);
  const text = await (await fetch(link.downloadUrl, {credentials: "same-origin"})).text();
  return text.split(/\r?\n/).filter(Boolean).slice(0, 11);
}

function importPage() {
  const form = document.getElementById("import-form");
  const steps = (n) => document.querySelectorAll(".steps li").forEach((li) => {
    if (Number(li.dataset.step) === n) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  });
  let dry = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showErrors(null);
    const file = document.getElementById("import-file").files[0];
    if (!file) { showErrors(new Error("Choose a file.")); return; }
    const entity = document.getElementById("import-entity").value;
    const mode = document.getElementById("import-mode").value;
    try {
      const task = await api("POST", "/tasks", {taskType: "import", entityType: entity,
        fileName: file.name, fileSize: file.size, params: {mode, validateOnly: true}});
      document.getElementById("upload").hidden = false;
      await upload(task.uploadUrl, task.uploadHeaders, file, (sent, size) => {
        document.getElementById("upload-progress").value = Math.round(100 * sent / size);
        document.getElementById("upload-text").textContent = `${sent} of ${size} bytes`;
      });
      document.getElementById("upload-progress").value = 100;
      document.getElementById("upload-text").textContent = "uploaded";
      await api("POST", `/tasks/${task.id}/submit`).catch(() => null);
      steps(2);
      document.getElementById("step-check").hidden = false;
      const status = document.getElementById("check-status");
      status.textContent = "Checking every row (nothing is written)…";
      dry = await follow(task.id, (t) => { status.textContent = `Checking… ${t.progress}%`; });
      dry.mode = mode;
      dry.entity = entity;
      status.textContent = dry.status === "completed"
        ? "Dry run finished: nothing was written." : `Dry run ${dry.status}: ${dry.errorMessage || ""}`;
      summary(document.getElementById("dry-summary"), dry.result, [["created", "Would create"],
        ["updated", "Would update"], ["skipped", "Would skip"], ["failed", "Rows with errors"]]);
      const errors = document.getElementById("dry-errors");
      errors.replaceChildren();
      if (dry.result && dry.result.errorReportFileId) {
        const lines = await reportRows(dry.id);
        errors.append(el("h3", {text: "First errors"}),
          el("pre", {id: "first-errors", text: lines.join("\n")}));
        const link = document.getElementById("dry-report");
        link.hidden = false;
        link.onclick = (e) => { e.preventDefault(); download(`/tasks/${dry.id}/download?file=errorReport`); };
      }
      document.getElementById("import-confirm").hidden = dry.status !== "completed";
      document.getElementById("import-restart").hidden = false;
    } catch (error) { showErrors(error); }
  });
  document.getElementById("import-restart").addEventListener("click", () => location.reload());
  document.getElementById("import-confirm").addEventListener("click", async () => {
    showErrors(null);
    try {
      const task = await api("POST", "/tasks", {taskType: "import", entityType: dry.entity,
        inputFileId: dry.inputFileId, params: {mode: dry.mode}});
      steps(3);
      document.getElementById("import-confirm").hidden = true;
      document.getElementById("step-run").hidden = false;
      document.getElementById("run-task").href = `/ui/tasks/${task.id}`;
      const bar = document.getElementById("run-progress");
      const text = document.getElementById("run-text");
      const done = await follow(task.id, (t) => {
        bar.value = t.progress;
        text.textContent = `${t.status} · ${t.progress}% · ${t.processedItems} rows`;
      });
      text.textContent = `Import ${done.status}` + (done.errorMessage ? `: ${done.errorMessage}` : ".");
      summary(document.getElementById("run-summary"), done.result, [["created", "Created"],
        ["updated", "Updated"], ["skipped", "Skipped"], ["failed", "Rows with errors"]]);
      if (done.result && done.result.errorReportFileId) {
        const button = document.getElementById("run-report");
        button.hidden = false;
        button.onclick = () => download(`/tasks/${done.id}/download?file=errorReport`);
      }
    } catch (error) { showErrors(error); }
  });
}

/* ---- Queues ---------------------------------------------------------------------------- */
function queuesPage() {
  for (const button of document.querySelectorAll("[data-queue-action]")) {
    button.addEventListener("click", async () => {
      try {
        await api("POST", `/queues/${button.dataset.queue}/${button.dataset.queueAction}`);
        location.reload();
      } catch (error) { flash(error.message, true); }
    });
  }
  liveTasks(() => api("GET", "/queues"), (queues) => {
    for (const q of queues) {
      const row = document.querySelector(`tr[data-queue="${q.queue}"]`);
      if (!row) continue;
      row.querySelector(".depth").textContent = q.depth;
      row.querySelector(".running").textContent = q.running;
      row.querySelector(".oldest").textContent =
        q.oldestWaitingSeconds === null ? "—" : `${Math.round(q.oldestWaitingSeconds)} s`;
      row.querySelector(".throughput").textContent =
        `${q.finishedLast5Minutes} (${q.throughputPerMinute}/min)`;
    }
  });
}

const PAGES = {tasks: tasksPage, task: taskPage, new: newTaskPage, export: exportPage,
  import: importPage, queues: queuesPage};
document.addEventListener("DOMContentLoaded", () => {
  const page = PAGES[document.body.dataset.page];
  if (page) page();
});

/* ==== Schedules and templates (service/ui/plans.py) =====================================
 * Added after the pages above; uses their helpers (el, flash, confirmDialog, schemaFields). */

/** api() for the plan forms: the message is the problem's detail; fieldErrors go by the fields. */
function planCall(method, path, body) {
  return api(method, path, body, {fieldsInMessage: false});
}

function planJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function clearFieldErrors(form, box) {
  form.querySelectorAll(".field-error").forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((input) => {
    input.removeAttribute("aria-invalid");
    const rest = (input.getAttribute("aria-describedby") || "").split(" ")
      .filter((id) => id && !id.endsWith("-error")).join(" ");
    if (rest) input.setAttribute("aria-describedby", rest);
    else input.removeAttribute("aria-describedby");
  });
  box.replaceChildren();
}

/** Each field error next to its input (aria-invalid, described by the reason), the others in
 * `box`; focus goes to the first wrong field. `root` is stripped first ("params." of a run). */
function showFieldErrors(form, box, prefix, error, root) {
  const errors = error.fieldErrors && error.fieldErrors.length ? error.fieldErrors
    : [{field: "", reason: error.message}];
  const general = [];
  let first = null;
  for (const e of errors) {
    let field = String(e.field || "");
    if (root && field.startsWith(`${root}.`)) field = field.slice(root.length + 1);
    const name = field.split(/[.[]/)[0];
    const input = name ? form.querySelector(`#${CSS.escape(`${prefix}-${name}`)}`) : null;
    if (!input) {
      general.push(e.field ? `${e.field}: ${e.reason}` : e.reason);
      continue;
    }
    const id = `${prefix}-${name}-error`;
    const text = field === name ? e.reason : `${field}: ${e.reason}`;
    const note = document.getElementById(id);
    if (note) {
      note.append(`; ${text}`);
    } else {
      (input.closest(".field") || input.parentElement).append(el("small",
        {id, class: "field-error error"}, el("span", {"aria-hidden": "true", text: "✖ "}),
        `Error: ${text}`));
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby",
        [input.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
    }
    first = first || input;
  }
  box.replaceChildren(...general.map((text) => el("p", {class: "error", text: `Error: ${text}`})));
  if (first) first.focus();
  else box.focus();
}

/** The current value into each generated input (an edit form). */
function fillFields(schema, prefix, values) {
  for (const name of Object.keys(schema.properties || {})) {
    const value = values[name];
    const input = document.getElementById(`${prefix}-${name}`);
    if (value === undefined || value === null || !input) continue;
    if (input.tagName === "SELECT" && ![...input.options].some((o) => o.value === String(value))) {
      // a value the form does not offer (a template or type the viewer may not use): kept as
      // it is, not read back as empty (which an edit would send as null)
      input.append(el("option", {value: String(value), text: String(value)}));
    }
    if (input.type === "checkbox") input.checked = Boolean(value);
    else if (input.tagName === "TEXTAREA") input.value = JSON.stringify(value, null, 2);
    else if (Array.isArray(value)) input.value = value.join(", ");
    else input.value = String(value);
  }
}

/** A form generated from a request model's JSON Schema (see schemaFields); `values` fill it
 * for an edit. Returns read(): the body, or an error naming a field whose JSON is not JSON. */
function planForm(container, schema, prefix, values) {
  const read = schemaFields(container, schema, prefix);
  for (const [name, names] of Object.entries(schema["x-labels"] || {})) {
    const select = document.getElementById(`${prefix}-${name}`);
    if (!select || !select.options) continue;
    for (const option of select.options) {
      if (names[option.value]) option.textContent = names[option.value];
    }
  }
  if (values) fillFields(schema, prefix, values);
  return () => {
    const wrong = [];
    for (const name of Object.keys(schema.properties || {})) {
      const input = document.getElementById(`${prefix}-${name}`);
      if (!input || input.tagName !== "TEXTAREA" || !input.value.trim()) continue;
      try { JSON.parse(input.value); } catch (e) {
        wrong.push({field: name, reason: `is not valid JSON (${e.message})`});
      }
    }
    if (wrong.length) {
      const error = new Error("Some fields are not valid JSON.");
      error.fieldErrors = wrong;
      throw error;
    }
    return read();
  };
}

/** An edit's body: the fields that differ from `values`; a nullable one emptied is null. */
function changedFields(schema, values, body) {
  const changed = {};
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    const before = values[name] === undefined ? null : values[name];
    if (body[name] === undefined) {
      const nullable = (raw.anyOf || []).some((b) => b.type === "null");
      if (before !== null && nullable) changed[name] = null;
    } else if (JSON.stringify(body[name]) !== JSON.stringify(before)) {
      changed[name] = body[name];
    }
  }
  return changed;
}

function planFormPage(onSaved) {
  const form = document.getElementById("plan-form");
  if (!form) return;
  const box = document.getElementById("form-errors");
  box.tabIndex = -1;
  const schema = planJson("form-schema");
  const values = planJson("form-values");
  const prefix = form.dataset.kind === "schedule" ? "sf" : "tf";
  const read = planForm(document.getElementById("plan-fields"), schema, prefix, values);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form, box);
    try {
      const body = read();
      const id = form.dataset.id;
      let saved;
      if (form.dataset.kind === "schedule") {
        saved = id ? await planCall("PATCH", `/schedules/${id}`, changedFields(schema, values, body))
          : await planCall("POST", "/schedules", body);
      } else {
        saved = id ? await planCall("PUT", `/templates/${encodeURIComponent(id)}`, body)
          : await planCall("POST", "/templates", body);
      }
      onSaved(saved);
    } catch (error) { showFieldErrors(form, box, prefix, error); }
  });
}

function scheduleActions() {
  for (const button of document.querySelectorAll("[data-schedule-action]")) {
    button.addEventListener("click", async () => {
      try {
        await planCall("POST",
          `/schedules/${button.dataset.schedule}/${button.dataset.scheduleAction}`);
        location.reload();
      } catch (error) { flash(error.message, true); }
    });
  }
}

function schedulesPage() {
  scheduleActions();
}

function scheduleNewPage() {
  planFormPage((saved) => location.assign(`/ui/schedules/${saved.id}`));
}

function schedulePage() {
  const box = document.getElementById("schedule");
  scheduleActions();
  document.getElementById("schedule-delete").addEventListener("click", async () => {
    const ok = await confirmDialog(
      `Delete the schedule “${box.dataset.name}”? It stops firing; the tasks it made stay.`);
    if (!ok) return;
    try {
      await planCall("DELETE", `/schedules/${box.dataset.id}`);
      location.assign("/ui/schedules");
    } catch (error) { flash(error.message, true); }
  });
  planFormPage(() => location.reload());
}

function templateNewPage() {
  planFormPage((saved) => location.assign(`/ui/templates/${encodeURIComponent(saved.id)}`));
}

function templatePage() {
  const id = document.getElementById("template").dataset.id;
  const form = document.getElementById("run-form");
  if (form) {
    const box = document.getElementById("run-errors");
    box.tabIndex = -1;
    const read = planForm(document.getElementById("run-fields"), planJson("run-schema"), "run");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearFieldErrors(form, box);
      try {
        const task = await planCall("POST", "/tasks/from-template", {templateId: id, params: read()});
        location.assign(`/ui/tasks/${task.id}`);
      } catch (error) { showFieldErrors(form, box, "run", error, "params"); }
    });
  }
  planFormPage(() => location.reload());
}

Object.assign(PAGES, {schedules: schedulesPage, "schedule-new": scheduleNewPage,
  schedule: schedulePage, templates: () => {}, "template-new": templateNewPage,
  template: templatePage});

/* ==== Insights: analytics, dead letters, inbox (service/ui/insights.py) ================== */
/* Added after PAGES so the other pages' code stays as it was; DOMContentLoaded runs later. */

/** Dead letters: replay one, or every one the filter matches after its count (dry run). */
function deadLettersPage() {
  const table = document.getElementById("dead-letters");
  for (const button of table.querySelectorAll("[data-replay]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const letter = await api("POST", `/dead-letters/${button.dataset.replay}/replay`);
        flash(`Dead letter ${letter.id} replayed: ${letter.eventType} published again.`);
        setTimeout(() => location.reload(), 1200);
      } catch (error) { button.disabled = false; flash(error.message, true); }
    });
  }
  document.getElementById("replay-filter").addEventListener("click", async () => {
    const filter = JSON.parse(table.dataset.filter || "{}");
    const most = Number(table.dataset.max);
    try {
      const preview = await api("POST", "/dead-letters:replay", {filter, dryRun: true, limit: most});
      if (!preview.matched) { flash("No dead letter matches the filter.", true); return; }
      if (preview.matched > most) {
        flash(`${preview.matched} dead letters match, more than ${most}: narrow the filter.`, true);
        return;
      }
      const ok = await confirmDialog(`${preview.matched} dead letters match the filter; ` +
        "each will be published again. Continue?");
      if (!ok) return;
      // the count confirmed is the limit: should more match by now, nothing is sent (422)
      const done = await api("POST", "/dead-letters:replay", {filter, limit: preview.matched});
      flash(`${done.replayed} dead letters replayed` +
        (done.skipped ? `, ${done.skipped} skipped (not an event this service publishes)` : "") + ".");
      setTimeout(() => location.reload(), 1200);
    } catch (error) { flash(error.message, true); }
  });
}

/** The navigation's and the page's unread counts, from the API's answer. */
function paintUnread(count) {
  for (const id of ["nav-unread", "inbox-unread"]) {
    const node = document.getElementById(id);
    if (node) node.textContent = String(count);
  }
  const all = document.getElementById("read-all");
  if (all) all.disabled = count === 0;
}

function markedRead(item) {
  item.dataset.read = "true";
  item.className = "read";
  item.querySelector(".state").replaceChildren(el("span", {class: "muted", text: "read"}));
  const button = item.querySelector("button[data-read]");
  if (button) button.remove();
}

function inboxPage() {
  const list = document.getElementById("messages");
  for (const button of list.querySelectorAll("button[data-read]")) {
    button.addEventListener("click", async () => {
      try {
        await api("POST", `/messages/${button.dataset.read}/read`);
        markedRead(button.closest("li"));
        paintUnread((await api("GET", "/messages?pageSize=1")).unread);
        flash("Marked read.");
        // the button is gone: keep the keyboard's place (the next unread message, else main)
        (list.querySelector("button[data-read]") || document.getElementById("main")).focus();
      } catch (error) { flash(error.message, true); }
    });
  }
  document.getElementById("read-all").addEventListener("click", async () => {
    try {
      const done = await api("POST", "/messages/read-all");
      for (const item of list.querySelectorAll("li[data-read=\"false\"]")) markedRead(item);
      paintUnread((await api("GET", "/messages?pageSize=1")).unread);
      flash(`${done.marked} messages marked read.`);
    } catch (error) { flash(error.message, true); }
  });
}

Object.assign(PAGES, {"dead-letters": deadLettersPage, inbox: inboxPage});
