// copper-wasm's console: views over the daemon's HTTP API, updated live.
// No framework and nothing fetched from elsewhere: a few helpers, one function
// per view, each returning what stops its timers and streams when it is left.
"use strict";

const TOKEN_KEY = "copper-wasm-token";
const REFRESH_MS = 2000;

// ---- helpers ---------------------------------------------------------------

/** An element: h("td", {class: "num"}, "3"); children are nodes or text. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (key === "style") el.style.cssText = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function badge(status) {
  return h("span", { class: "badge " + status }, status);
}

function ms(value) {
  if (value === undefined || value === null) return "";
  if (value < 1000) return value + " ms";
  if (value < 60000) return (value / 1000).toFixed(1) + " s";
  return Math.floor(value / 60000) + " min " + Math.round((value % 60000) / 1000) + " s";
}

function when(text) {
  if (!text) return "";
  const date = new Date(text);
  return isNaN(date) ? text : date.toLocaleString();
}

function say(text, error) {
  const el = document.getElementById("status");
  el.textContent = text;
  el.className = error ? "error" : "";
}

class Problem extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** Calls the API with the token, if any; JSON back unless `raw`. */
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    askToken();
    throw new Problem(401, "this daemon needs its token");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const problem = await response.json();
      detail = problem.detail || problem.title || detail;
    } catch (_) { /* not a problem document */ }
    throw new Problem(response.status, detail);
  }
  if (options.raw) return response;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function askToken() {
  if (document.querySelector(".token")) return;
  const input = h("input", { type: "password", autocomplete: "off", placeholder: "COPPER_HTTP_TOKEN" });
  const form = h("form", { class: "token", onsubmit: (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value);
    route();
  } },
    h("b", {}, "This daemon needs its API token"),
    h("span", { class: "muted" }, "It is kept in this tab only (sessionStorage)."),
    input, h("button", { type: "submit" }, "Use it"));
  const view = document.getElementById("view");
  view.replaceChildren(form);
  input.focus();
}

/** Parses SVG text from the daemon into a node (never as HTML). */
function svgNode(text) {
  // The drawing's own <style> is the page's to give (and its policy refuses inline styles).
  const doc = new DOMParser().parseFromString(text.replace(/<style>[\s\S]*?<\/style>/g, ""), "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") return h("p", { class: "muted" }, "no drawing");
  return document.importNode(svg, true);
}

/** Reads a run's Server-Sent Events over fetch (so the token can go with it). */
function stream(path, onEvent) {
  const controller = new AbortController();
  (async () => {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers["Authorization"] = "Bearer " + token;
    const response = await fetch(path, { headers, signal: controller.signal });
    if (!response.ok || !response.body) return;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (data) {
          try { onEvent(JSON.parse(data)); } catch (_) { /* a keep-alive or a partial line */ }
        }
      }
    }
  })().catch((error) => { if (error.name !== "AbortError") say("live updates stopped: " + error.message, true); });
  return () => controller.abort();
}

/** Runs `work` now and every REFRESH_MS until stopped. */
function every(work) {
  let stopped = false;
  let timer;
  const tick = async () => {
    try { await work(); say("updated " + new Date().toLocaleTimeString()); }
    catch (error) { if (error.status !== 401) say(error.message, true); }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

// ---- metrics: errors and recent latencies per service ---------------------

/** Prometheus text → [{name, labels, value}] (our own metrics: simple labels). */
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

let lastLatency = {};
/** Per service: failed requests so far, and the mean latency since the last look. */
function serviceFigures(samples) {
  const figures = {};
  const of = (service) => (figures[service] = figures[service] || { errors: 0, requests: 0, sum: 0, count: 0 });
  for (const s of samples) {
    if (!s.labels.service) continue;
    if (s.name === "copper_requests_total") {
      of(s.labels.service).requests += s.value;
      if (s.labels.status !== "success") of(s.labels.service).errors += s.value;
    } else if (s.name === "copper_request_duration_seconds_sum") {
      of(s.labels.service).sum += s.value;
    } else if (s.name === "copper_request_duration_seconds_count") {
      of(s.labels.service).count += s.value;
    }
  }
  for (const [service, f] of Object.entries(figures)) {
    const before = lastLatency[service];
    if (before && f.count > before.count) f.recentMs = ((f.sum - before.sum) / (f.count - before.count)) * 1000;
    else if (before) f.recentMs = before.recentMs;
    lastLatency[service] = { sum: f.sum, count: f.count, recentMs: f.recentMs };
  }
  return figures;
}

// ---- views -----------------------------------------------------------------

function servicesView(view) {
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  view.replaceChildren(
    h("h1", {}, "Services"),
    h("table", { id: "services" },
      h("thead", {}, h("tr", {},
        h("th", {}, "Service"), h("th", {}, "Status"), h("th", { class: "hide-narrow" }, "Backend"),
        h("th", {}, "Hosts"), h("th", { class: "num" }, "In flight"), h("th", { class: "num" }, "Queued"),
        h("th", { class: "num" }, "Errors"), h("th", { class: "num" }, "Recent latency"), h("th", {}, ""))),
      body),
    note);
  const open = new Set();
  const command = async (name, verb) => {
    try {
      const done = await api(`/v1/services/${encodeURIComponent(name)}/${verb}`, { method: "POST" });
      say(`${name}: ${verb} → ${done.state}`);
    } catch (error) { say(`${name}: ${verb} failed: ${error.message}`, true); }
    refresh();
  };
  const refresh = async () => {
    const [services, metrics] = await Promise.all([
      api("/v1/services"),
      api("/metrics").then(parseMetrics).catch(() => []),
    ]);
    const figures = serviceFigures(metrics);
    const rows = [];
    for (const s of services) {
      const f = figures[s.name] || {};
      const load = s.load || {};
      const here = !!s.load;
      const state = s.status;
      const buttons = h("div", { class: "buttons" },
        ["start", "stop", "pause", "resume", "reload"].map((verb) => h("button", {
          "data-command": verb, "data-service": s.name,
          disabled: !here || (verb === "start" && state !== "stopped") || (verb === "stop" && state === "stopped")
            || (verb === "pause" && state !== "up") || (verb === "resume" && state !== "paused")
            || (verb === "reload" && s.backend !== "component"),
          onclick: () => command(s.name, verb),
        }, verb)));
      const toggle = h("a", { href: "#/services", onclick: (e) => {
        e.preventDefault();
        if (open.has(s.name)) open.delete(s.name); else open.add(s.name);
        refresh();
      } }, s.name);
      rows.push(h("tr", { "data-service": s.name },
        h("td", {}, toggle, h("div", { class: "muted" }, s.version ? "v" + s.version : "")),
        h("td", {}, badge(state)),
        h("td", { class: "hide-narrow" }, s.backend),
        h("td", {}, (s.hosts || []).join(", ")),
        h("td", { class: "num" }, here ? load.in_flight : ""),
        h("td", { class: "num" }, here ? `${load.queued} / ${load.queue}` : ""),
        h("td", { class: "num" }, f.errors || 0),
        h("td", { class: "num" }, f.recentMs !== undefined ? f.recentMs.toFixed(2) + " ms" : ""),
        h("td", {}, buttons)));
      if (open.has(s.name)) {
        rows.push(h("tr", {}, h("td", { colspan: 9 },
          (s.actions || []).map((a) => h("details", { open: true },
            h("summary", {}, h("code", {}, a.topic), " ", h("span", { class: "muted" }, a.doc || "")),
            h("pre", {}, "input: " + JSON.stringify(a.input_schema, null, 2)),
            h("pre", {}, "output: " + JSON.stringify(a.output_schema, null, 2)))))));
      }
    }
    body.replaceChildren(...rows);
    note.textContent = services.length ? "" : "No service is up.";
    // For whoever times the console (host/benches/console.rs): the first draw.
    if (!performance.getEntriesByName("copper:services-drawn").length) performance.mark("copper:services-drawn");
  };
  return every(refresh);
}

function runsView(view) {
  const status = h("select", { id: "filter-status" },
    ["", "running", "success", "failed", "cancelled", "interrupted"].map((s) => h("option", { value: s }, s || "any status")));
  const workflow = h("input", { id: "filter-workflow", type: "search", placeholder: "workflow" });
  const body = h("tbody");
  let runs = [];
  const draw = () => {
    const shown = runs.filter((r) => (!status.value || r.status === status.value)
      && (!workflow.value || (r.workflow || "").includes(workflow.value))).reverse().slice(0, 200);
    body.replaceChildren(...shown.map((r) => {
      const steps = Object.values(r.steps || {});
      const done = steps.filter((s) => ["success", "cached", "failed", "skipped"].includes(s.status)).length;
      const took = r.finished ? new Date(r.finished) - new Date(r.started) : undefined;
      return h("tr", { "data-run": r.id },
        h("td", {}, h("a", { href: "#/runs/" + encodeURIComponent(r.id) }, r.id)),
        h("td", {}, r.workflow), h("td", {}, badge(r.status)),
        h("td", { class: "hide-narrow" }, when(r.started)),
        h("td", { class: "num" }, took !== undefined ? ms(took) : ""),
        h("td", { class: "num" }, `${done} / ${steps.length}`));
    }));
  };
  status.addEventListener("change", draw);
  workflow.addEventListener("input", draw);
  view.replaceChildren(
    h("h1", {}, "Runs"),
    h("div", { class: "filters" }, status, workflow),
    h("table", { id: "runs" },
      h("thead", {}, h("tr", {}, h("th", {}, "Run"), h("th", {}, "Workflow"), h("th", {}, "Status"),
        h("th", { class: "hide-narrow" }, "Started"), h("th", { class: "num" }, "Took"), h("th", { class: "num" }, "Steps"))),
      body));
  return every(async () => { runs = await api("/v1/runs"); draw(); });
}

function runView(view, id) {
  const path = "/v1/runs/" + encodeURIComponent(id);
  const title = h("h1", {}, "Run ", h("code", {}, id));
  const meta = h("div", { class: "meta" });
  const actions = h("div", { class: "buttons" });
  const graph = h("div", { class: "graph", id: "run-graph" }, h("p", { class: "muted" }, "Drawing…"));
  const timeline = h("div", { class: "timeline", id: "timeline" });
  const steps = h("tbody");
  const log = h("div", { id: "step-log" });
  view.replaceChildren(title, meta, actions, h("h2", {}, "Steps"), graph, h("h2", {}, "Timeline"), timeline,
    h("table", { id: "steps" }, h("thead", {}, h("tr", {}, h("th", {}, "Step"), h("th", {}, "Action"), h("th", {}, "Status"),
      h("th", { class: "num" }, "Tries"), h("th", { class: "num" }, "Took"), h("th", {}, "Outputs or error"))), steps),
    h("h2", {}, "Log"), log);

  let state = null;
  const times = {}; // step → {start, end}
  let runStart = null, runEnd = null, selected = null;

  const showLog = async (step) => {
    selected = step;
    for (const node of graph.querySelectorAll("g.node")) node.classList.toggle("selected", node.dataset.id === "step:" + step);
    try {
      const text = await api(`${path}/steps/${encodeURIComponent(step)}/log`);
      log.replaceChildren(h("b", {}, step), h("pre", { id: "log-text" }, text || "(nothing reported)"));
    } catch (error) { log.replaceChildren(h("p", { class: "error-text" }, error.message)); }
  };

  /** The steps in the order they started (those not started yet after, by name). */
  const ordered = () => Object.entries(state.steps).sort(([a], [b]) => {
    const ta = (times[a] || {}).start, tb = (times[b] || {}).start;
    if (ta && tb) return ta - tb;
    if (ta || tb) return ta ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });

  const draw = () => {
    if (!state) return;
    meta.replaceChildren(...[
      h("span", {}, "workflow ", h("b", {}, state.workflow)),
      h("span", { id: "run-status" }, badge(state.status)),
      h("span", {}, "started ", h("b", {}, when(state.started))),
      state.finished ? h("span", {}, "ended ", h("b", {}, when(state.finished))) : null,
      state.trigger ? h("span", {}, "trigger ", h("code", {}, JSON.stringify(state.trigger))) : null,
    ].filter(Boolean));
    const running = state.status === "running";
    actions.replaceChildren(
      h("button", { id: "cancel", disabled: !running, onclick: () => act("cancel") }, "Cancel"),
      h("button", { id: "resume", disabled: running || state.status === "success", onclick: () => act("resume") }, "Resume"),
      h("button", { id: "again", disabled: running, onclick: () => act("again") }, "Run again"));
    for (const node of graph.querySelectorAll("g.node")) {
      const step = state.steps[node.dataset.id.replace(/^step:/, "")];
      if (step) node.setAttribute("data-status", step.status);
    }
    steps.replaceChildren(...ordered().map(([name, s]) => h("tr", { "data-step": name, "data-status": s.status },
      h("td", {}, h("a", { href: "#" + location.hash.slice(1), onclick: (e) => { e.preventDefault(); showLog(name); } }, name)),
      h("td", {}, h("code", {}, s.action)), h("td", {}, badge(s.status)),
      h("td", { class: "num" }, s.attempts), h("td", { class: "num" }, s.duration_ms ? ms(s.duration_ms) : ""),
      h("td", {}, s.error ? h("div", { class: "error-text" }, s.error)
        : Object.keys(s.outputs || {}).length ? h("details", {}, h("summary", {}, Object.keys(s.outputs).join(", ")), h("pre", {}, JSON.stringify(s.outputs, null, 2))) : ""))));
    const now = runEnd || Date.now();
    const start = runStart || now;
    const span = Math.max(1, now - start);
    timeline.replaceChildren(...ordered().map(([name, s]) => {
      const t = times[name] || {};
      const bar = t.start ? h("div", { class: "bar " + s.status, style: `left:${((t.start - start) / span) * 100}%;width:${(((t.end || now) - t.start) / span) * 100}%` }) : null;
      return h("div", { class: "row", "data-step": name }, h("span", { class: "label" }, name),
        h("div", { class: "track" }, bar), h("span", { class: "took" }, t.start ? ms((t.end || now) - t.start) : ""));
    }));
  };

  const act = async (verb) => {
    try {
      const done = await api(`${path}/${verb}`, { method: "POST" });
      if (verb === "again" && done.id) location.hash = "#/runs/" + encodeURIComponent(done.id);
      else if (verb === "resume") route();
      else say(`${verb}: asked`);
    } catch (error) { say(`${verb} failed: ${error.message}`, true); }
  };

  const apply = (event) => {
    if (!state) return;
    const at = Date.parse(event.at);
    const step = event.step && state.steps[event.step];
    switch (event.event) {
      case "run.started": runStart = at; state.status = "running"; break;
      case "step.started":
        if (step) { step.status = "running"; step.attempts = event.attempt; }
        if (event.step && !(times[event.step] && times[event.step].start && event.attempt > 1)) times[event.step] = { start: at };
        break;
      case "step.finished":
        if (step) Object.assign(step, { status: event.status, duration_ms: event.duration_ms, outputs: event.outputs, error: event.error, attempts: event.attempts });
        if (event.step) times[event.step] = Object.assign(times[event.step] || { start: at - (event.duration_ms || 0) }, { end: at });
        break;
      case "step.skipped":
        if (step) Object.assign(step, { status: "skipped", error: event.reason });
        break;
      case "run.cancelled": state.status = "cancelled"; runEnd = at; break;
      case "run.finished": state.status = event.success ? "success" : "failed"; runEnd = at; state.finished = event.at; break;
    }
    draw();
    if (selected && event.step === selected) showLog(selected);
  };

  let stopStream = () => {};
  let ticker = null;
  (async () => {
    try {
      state = await api(path);
      const svg = await api(path + "/graph?format=svg");
      graph.replaceChildren(svgNode(svg));
      for (const node of graph.querySelectorAll("g.node")) {
        node.addEventListener("click", () => showLog(node.dataset.id.replace(/^step:/, "")));
      }
      draw();
      stopStream = stream(path + "/events", apply);
      ticker = setInterval(() => { if (state && state.status === "running") draw(); }, 500);
      say("live");
    } catch (error) {
      if (error.status !== 401) view.replaceChildren(h("h1", {}, "Run ", h("code", {}, id)), h("p", { class: "error-text" }, error.message));
    }
  })();
  return () => { stopStream(); clearInterval(ticker); };
}

function graphView(view) {
  const box = h("div", { class: "graph", id: "system-graph" }, h("p", { class: "muted" }, "Drawing…"));
  const text = h("pre", { id: "graph-text", hidden: true });
  const show = async (format) => {
    text.hidden = false;
    text.textContent = await api("/v1/graph?format=" + format);
  };
  view.replaceChildren(
    h("h1", {}, "System graph"),
    h("p", { class: "muted" }, "Drawn from what this daemon saw on the broker: who asks which service, who reads the finishes, the resources services produce and read, and what triggers the workflows it keeps (dashed)."),
    h("div", { class: "buttons" },
      h("button", { id: "redraw", onclick: () => draw() }, "Draw again"),
      h("button", { onclick: () => show("dot") }, "DOT"),
      h("button", { onclick: () => show("mermaid") }, "mermaid")),
    h("div", { class: "legend" }, "services: boxes · workflows and runners: rounded · resources and topics: ellipses · dashed: declared, not seen yet"),
    box, text);
  const draw = async () => {
    try { box.replaceChildren(svgNode(await api("/v1/graph?format=svg"))); say("drawn " + new Date().toLocaleTimeString()); }
    catch (error) { if (error.status !== 401) box.replaceChildren(h("p", { class: "error-text" }, error.message)); }
  };
  draw();
  return () => {};
}

// ---- routing ---------------------------------------------------------------

let leave = () => {};
function route() {
  leave();
  const view = document.getElementById("view");
  const parts = (location.hash || "#/services").slice(2).split("/").map(decodeURIComponent);
  const name = parts[0] || "services";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.dataset.view === name);
  if (name === "runs" && parts[1]) leave = runView(view, parts[1]);
  else if (name === "runs") leave = runsView(view);
  else if (name === "graph") leave = graphView(view);
  else leave = servicesView(view);
}

window.addEventListener("hashchange", route);
route();
