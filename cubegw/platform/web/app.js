// cubeplat dashboard: plain JavaScript, no build step, no third-party code.
// Every value from the platform is put in the page as text (textContent), never as HTML.
"use strict";

const state = { token: "", selected: null, paused: false, rules: [], stream: null };
const LOG_ROWS = 300;
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, cls) {
  const tr = el("tr", null, cls);
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el("td", c));
  return tr;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "";
}

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "muted";
}

// ------------------------------------------------------------------ devices

async function refreshDevices() {
  const data = await api("GET", "/api/devices");
  const body = $("devices").tBodies[0];
  body.replaceChildren();
  for (const d of data.devices) {
    const last = d.last_message ? (d.last_message.direction + " " +
      (d.last_message.message.RPCMethod || ("Result " + d.last_message.message.Result))) : "";
    const phase = el("td", d.phase, "phase-" + d.phase);
    const tr = row([d.mac, d.sn, phase, d.online ? "yes" : "no",
      d.plugin_connected ? "connected" : "", d.bound ? d.user_id : "",
      when(d.last_heartbeat), d.counters.in + " / " + d.counters.out, last]);
    tr.dataset.mac = d.mac;
    if (d.mac === state.selected) tr.classList.add("selected");
    tr.addEventListener("click", () => follow(d.mac));
    body.appendChild(tr);
  }
}

// ------------------------------------------------------------ message log

function logEntry(m) {
  if (state.paused) return;
  if (state.selected && m.mac !== state.selected) return;
  const body = $("log").tBodies[0];
  const message = Object.assign({}, m.message);
  if (m.parameter) {
    delete message.Parameter; delete message.return_Parameter;
    message.parameter = m.parameter;
  }
  const tr = row([when(m.time), m.mac || "?", m.direction === "in" ? "\u2192" : "\u2190",
    m.server, el("td", JSON.stringify(message), "json")], m.direction);
  tr.dataset.seq = m.seq;
  body.insertBefore(tr, body.firstChild);
  while (body.rows.length > LOG_ROWS) body.deleteRow(body.rows.length - 1);
}

// EventSource cannot send the bearer token: read the event stream with fetch.
async function openStream() {
  if (state.stream) state.stream.abort();
  const ctrl = new AbortController();
  state.stream = ctrl;
  const path = state.selected
    ? "/api/devices/" + state.selected + "/messages/stream?since=0"
    : "/api/messages/stream";
  try {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + state.token },
                                  signal: ctrl.signal });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data: "))
          .map((l) => l.slice(6)).join("\n");
        if (data) {
          try { logEntry(JSON.parse(data)); } catch (e) { /* not an entry */ }
        }
      }
    }
  } catch (e) {
    if (ctrl.signal.aborted) return;
  }
  if (state.stream === ctrl) setTimeout(openStream, 2000);   // reconnect
}

function follow(mac) {
  state.selected = mac;
  $("log-filter").textContent = mac ? "(" + mac + ")" : "";
  $("log").tBodies[0].replaceChildren();
  if (mac) $("rule-mac").value = mac;
  for (const tr of $("devices").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.mac === mac);
  }
  openStream();
}

// ------------------------------------------------------------- fault rules

const KEPT = "cubeplat.disabled-rules";

function disabledRules() {
  try { return JSON.parse(localStorage.getItem(KEPT) || "[]"); } catch (e) { return []; }
}

async function refreshFaults() {
  const data = await api("GET", "/api/faults");
  const active = data.faults.map((r) => {
    const spec = Object.assign({}, r);
    const remaining = spec.remaining;
    delete spec.remaining;
    return { spec, enabled: true, remaining };
  });
  state.rules = active.concat(disabledRules().map((spec) => ({ spec, enabled: false })));
  drawFaults();
}

function drawFaults() {
  const body = $("faults").tBodies[0];
  body.replaceChildren();
  state.rules.forEach((rule, i) => {
    const on = el("input");
    on.type = "checkbox";
    on.checked = rule.enabled;
    on.className = "rule-enabled";
    on.addEventListener("change", () => { rule.enabled = on.checked; applyRules(); });
    const text = el("textarea");
    text.rows = 1;
    text.value = JSON.stringify(rule.spec);
    text.className = "rule-json";
    text.addEventListener("change", () => {
      try { rule.spec = JSON.parse(text.value); applyRules(); }
      catch (e) { $("faults-error").textContent = "rule " + (i + 1) + ": " + e.message; }
    });
    const remove = el("button", "delete");
    remove.type = "button";
    remove.addEventListener("click", () => { state.rules.splice(i, 1); applyRules(); });
    const cells = [el("td"), el("td"), el("td",
      rule.enabled ? (rule.remaining === null || rule.remaining === undefined
        ? "unlimited" : rule.remaining) : "off"), el("td")];
    cells[0].appendChild(on); cells[1].appendChild(text); cells[3].appendChild(remove);
    body.appendChild(row(cells));
  });
}

async function applyRules() {
  $("faults-error").textContent = "";
  const enabled = state.rules.filter((r) => r.enabled).map((r) => r.spec);
  localStorage.setItem(KEPT, JSON.stringify(
    state.rules.filter((r) => !r.enabled).map((r) => r.spec)));
  try {
    await api("PUT", "/api/faults", { faults: enabled });
  } catch (e) {
    $("faults-error").textContent = e.message;
  }
  await refreshFaults();
}

function ruleFromForm() {
  const rule = { mac: $("rule-mac").value.trim() || "*", message: $("rule-message").value };
  if ($("rule-server").value !== "*") rule.server = $("rule-server").value;
  const action = $("rule-action").value;
  const value = $("rule-value").value.trim();
  if (action === "no_reply" || action === "disconnect") rule[action] = true;
  else rule[action] = Number(value);
  const count = $("rule-count").value.trim();
  if (count) rule.count = Number(count);
  return rule;
}

// --------------------------------------------------------- certification

async function refreshRuns() {
  const data = await api("GET", "/api/certify/runs");
  const body = $("runs").tBodies[0];
  body.replaceChildren();
  for (const r of data.runs) {
    const tr = row([String(r.id), when(r.received), r.dut, el("td", r.counts.PASS, "PASS"),
      el("td", r.counts.FAIL, "FAIL"), el("td", r.counts.SKIP, "SKIP")]);
    tr.dataset.run = r.id;
    tr.addEventListener("click", () => showRun(r.id));
    body.appendChild(tr);
  }
  if (data.runs.length && !state.shownRun) showRun(data.runs[0].id);
}

async function showRun(id) {
  state.shownRun = id;
  const run = await api("GET", "/api/certify/runs/" + id);
  const box = $("run-detail");
  box.replaceChildren(el("h3", "Run " + run.id + ": " + run.dut));
  const table = el("table");
  table.id = "verdicts";
  table.appendChild(row([el("th", "verdict"), el("th", "case"), el("th", "protocol.md"),
    el("th", "reason")]));
  for (const c of run.cases) {
    const tr = row([el("td", c.verdict, c.verdict), c.name, c.row, c.reason || c.title]);
    tr.dataset.case = c.name;
    tr.title = c.evidence.map((m) => JSON.stringify(m.message)).join("\n");
    table.appendChild(tr);
  }
  box.appendChild(table);
}

async function upload(file) {
  $("runs-error").textContent = "";
  try {
    await api("POST", "/api/certify/runs", await file.text());
    state.shownRun = null;
    await refreshRuns();
  } catch (e) {
    $("runs-error").textContent = e.message;
  }
}

// ------------------------------------------------------------------ start

async function tick() {
  if (!state.token) return;
  try {
    await Promise.all([refreshDevices(), refreshRuns()]);
    status("signed in; updated " + new Date().toLocaleTimeString());
  } catch (e) {
    status(e.message, true);
  }
}

async function start(token) {
  state.token = token;
  sessionStorage.setItem("cubeplat.token", token);
  try {
    await refreshFaults();
  } catch (e) {
    status(e.message, true);
    return;
  }
  document.body.classList.add("signed-in");
  follow(null);
  await tick();
}

$("login").addEventListener("submit", (e) => { e.preventDefault(); start($("token").value); });
$("add-rule").addEventListener("submit", (e) => {
  e.preventDefault();
  state.rules.push({ spec: ruleFromForm(), enabled: true });
  applyRules();
});
$("rules-clear").addEventListener("click", () => { state.rules = []; applyRules(); });
$("log-all").addEventListener("click", () => follow(null));
$("log-pause").addEventListener("click", () => {
  state.paused = !state.paused;
  $("log-pause").textContent = state.paused ? "Resume" : "Pause";
});
$("report-file").addEventListener("change", (e) => {
  if (e.target.files.length) upload(e.target.files[0]);
});
setInterval(tick, 1000);
setInterval(() => {
  const editing = document.activeElement && document.activeElement.tagName === "TEXTAREA";
  if (state.token && !editing) refreshFaults().catch(() => {});
}, 3000);

const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
const saved = fromHash || sessionStorage.getItem("cubeplat.token");
if (saved) start(saved);
