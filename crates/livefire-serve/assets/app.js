// The livefire console: one page over the JSON API (see /api/openapi.yaml). Logged in
// by a session cookie (HttpOnly, set by /api/login); every change sends the session's
// CSRF token in X-CSRF-Token. A run's page follows its journal over Server-Sent Events.
"use strict";

const state = { me: null, source: null, poll: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

async function api(method, path, body, type) {
  const headers = {};
  if (method !== "GET" && state.me) headers["X-CSRF-Token"] = state.me.csrf;
  if (body !== undefined) headers["Content-Type"] = type || "application/json";
  const r = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : (typeof body === "string" ? body : JSON.stringify(body)),
  });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (r.status === 401 && path !== "/api/login") { showLogin(data && data.error); }
  return { status: r.status, data };
}

const can = (role) => {
  const order = ["viewer", "operator", "admin"];
  return state.me && order.indexOf(state.me.role) >= order.indexOf(role);
};

function closeLive() {
  if (state.source) { state.source.close(); state.source = null; }
  if (state.poll) { clearInterval(state.poll); state.poll = null; }
}

function showLogin(message) {
  closeLive();
  state.me = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  document.getElementById("view").replaceChildren();
  document.getElementById("login-view").hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

function loggedIn(me) {
  state.me = me;
  document.getElementById("login-view").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("who").textContent = `${me.name} (${me.role})`;
  document.getElementById("nav-tokens").hidden = !can("admin");
  route();
}

async function start() {
  document.getElementById("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = document.getElementById("token").value.trim();
    const r = await api("POST", "/api/login", { token });
    if (r.status === 200) {
      document.getElementById("token").value = "";
      loggedIn(r.data);
    } else {
      document.getElementById("login-error").textContent = (r.data && r.data.error) || `login failed (${r.status})`;
    }
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout");
    showLogin("logged out");
  });
  window.addEventListener("hashchange", route);
  const r = await fetch("/api/whoami", { credentials: "same-origin" });
  if (r.status === 200) loggedIn(await r.json());
  else showLogin();
}

function route() {
  if (!state.me) return;
  closeLive();
  const [page, arg] = location.hash.replace(/^#/, "").split("/");
  // A fresh element for each page: a page still loading when the user moves on (an
  // experiment's plan, say) then finishes into the old, detached one, not into this page.
  const old = document.getElementById("view");
  const view = old.cloneNode(false);
  old.replaceWith(view);
  if (page === "experiments") return experimentsPage(view);
  if (page === "experiment") return experimentPage(view, decodeURIComponent(arg || ""));
  if (page === "run") return runPage(view, decodeURIComponent(arg || ""));
  if (page === "audit") return auditPage(view);
  if (page === "schedules") return schedulesPage(view);
  if (page === "trends") return trendsPage(view, decodeURIComponent(arg || "")); // trends.js
  if (page === "gameday") return gamedayPage(view, decodeURIComponent(arg || "")); // gameday.js
  if (page === "tokens") return tokensPage(view); // tokens.js
  return runsPage(view);
}

// ---- experiments ---------------------------------------------------------------

async function experimentsPage(view) {
  view.append(el("h1", {}, "Experiments"));
  const list = el("table", { id: "experiments" }, el("tr", {}, el("th", {}, "name"), el("th", {}, "updated"), el("th", {}, "by")));
  view.append(list);
  const r = await api("GET", "/api/experiments");
  for (const e of (r.data || [])) {
    list.append(el("tr", {},
      el("td", {}, el("a", { href: `#experiment/${encodeURIComponent(e.name)}` }, e.name)),
      el("td", {}, e.updated), el("td", {}, e.updated_by)));
  }
  view.append(editor("", ""));
}

/// The upload form: a name, the text (typed or from a file), Validate and Upload.
function editor(name, text) {
  const box = el("div", { class: "card", id: "editor" });
  const nameInput = el("input", { id: "exp-name", value: name, placeholder: "name (letters, digits, . _ -)", size: 40 });
  const area = el("textarea", { id: "exp-text", spellcheck: "false" });
  area.value = text;
  const file = el("input", { type: "file", id: "exp-file", accept: ".yaml,.yml,.json" });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    area.value = await f.text();
    if (!nameInput.value) nameInput.value = f.name.replace(/\.(ya?ml|json)$/, "");
  });
  const out = el("div", { id: "diagnostics", role: "status" });
  const send = async (path, method) => {
    out.replaceChildren();
    const r = await api(method, path, area.value, "text/plain");
    if (r.status === 200 || r.status === 201) {
      out.append(el("p", { class: "ok" }, method === "PUT" ? `stored: ${nameInput.value}` : "valid"));
      if (method === "PUT") location.hash = `#experiment/${encodeURIComponent(nameInput.value)}`;
    } else {
      showDiagnostics(out, r, area);
    }
  };
  const validate = el("button", { type: "button", id: "validate", onclick: () => send(`/api/validate?name=${encodeURIComponent(nameInput.value || "experiment")}`, "POST") }, "Validate");
  const upload = el("button", { type: "button", id: "upload", class: "primary", disabled: !can("operator"),
    onclick: () => send(`/api/experiments/${encodeURIComponent(nameInput.value)}`, "PUT") }, "Upload");
  box.append(el("h2", {}, "Upload or edit"), el("p", {}, nameInput, " ", file), area, el("p", {}, validate, " ", upload), out);
  return box;
}

/// Each error at its file, line and column, with the line and a caret under the column.
function showDiagnostics(out, r, area) {
  const d = r.data || {};
  out.append(el("p", { class: "error" }, d.error || `refused (${r.status})`));
  const lines = area.value.split("\n");
  (d.diagnostics || []).forEach((x, i) => {
    const where = `${x.file}:${x.line}:${x.column}`;
    const jump = el("a", { class: "where", onclick: () => selectLine(area, x.line, x.column) }, where);
    const src = el("pre", { class: "source" },
      el("span", { class: "line bad" }, `${x.line} | ${lines[x.line - 1] || ""}`),
      el("span", { class: "caret" }, " ".repeat(String(x.line).length + 3 + Math.max(0, x.column - 1)) + "^"));
    out.append(el("div", { class: "diag", id: `diag-${i}`, "data-line": x.line, "data-column": x.column },
      jump, `: ${x.severity}: ${x.message}`, src));
  });
}

function selectLine(area, line, column) {
  const lines = area.value.split("\n");
  let at = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
  area.focus();
  area.setSelectionRange(at + column - 1, at + (lines[line - 1] || "").length);
}

async function experimentPage(view, name) {
  const r = await api("GET", `/api/experiments/${encodeURIComponent(name)}`);
  if (r.status !== 200) { view.append(el("p", { class: "error" }, (r.data && r.data.error) || "not found")); return; }
  const e = r.data;
  const launch = launchFields("run");
  const startBtn = el("button", { type: "button", id: "start-run", class: "primary", disabled: !can("operator"), onclick: async () => {
    msg.textContent = "starting…";
    started(await api("POST", "/api/runs", launch.body(name)), msg);
  } }, "Start a run");
  const msg = el("p", { class: "error", id: "start-error", role: "alert" });
  view.append(el("h1", {}, e.name), el("p", { class: "muted" }, `updated ${e.updated} by ${e.updated_by} · `,
    el("a", { href: `#trends/${encodeURIComponent(name)}`, id: "trends-link" }, "Trends")), launch, startBtn, msg);
  const planBox = el("div", { class: "card", id: "plan" }, el("h2", {}, "Plan (dry run)"));
  view.append(planBox);
  const p = await api("GET", `/api/experiments/${encodeURIComponent(name)}/plan`);
  if (p.status === 200) {
    planBox.append(timeline(p.data.activities), el("pre", {}, p.data.text));
  } else {
    planBox.append(el("p", { class: "error" }, (p.data && p.data.error) || "cannot plan"));
  }
  view.append(editor(e.name, e.text));
}

/// The plan's activities as bars on one time axis.
function timeline(acts) {
  const end = Math.max(1, ...acts.map((a) => a.start_ms + a.duration_ms));
  const box = el("div", { class: "timeline" });
  for (const a of acts) {
    const bar = el("div", { class: "bar", title: `${a.name}: ${a.start_ms / 1000}s for ${a.duration_ms / 1000}s` }, `${a.name} (${a.kind})`);
    bar.style.left = `${(100 * a.start_ms) / end}%`;
    bar.style.width = `${Math.max(2, (100 * a.duration_ms) / end)}%`;
    box.append(el("div", { class: "row" }, bar));
  }
  return box;
}

// ---- runs ----------------------------------------------------------------------

async function runsPage(view) {
  view.append(el("h1", {}, "Runs"));
  const t = el("table", { id: "runs" }, el("tr", {}, ...["run", "experiment", "state", "verdict", "started", "by"].map((h) => el("th", {}, h))));
  view.append(t);
  approvalsPanel(t);
  const r = await api("GET", "/api/runs");
  for (const run of (r.data || [])) {
    t.append(el("tr", { "data-run": run.id },
      el("td", {}, el("a", { href: `#run/${encodeURIComponent(run.id)}` }, run.id)),
      el("td", {}, run.experiment),
      el("td", { class: `state-${run.state}` }, run.state),
      el("td", { class: `verdict ${run.verdict || ""}` }, run.verdict || "–"),
      el("td", {}, run.started), el("td", {}, run.started_by)));
  }
}

async function auditPage(view) {
  view.append(el("h1", {}, "Audit log"));
  const t = el("table", { id: "audit" }, el("tr", {}, ...["when", "who", "did", "what", "detail"].map((h) => el("th", {}, h))));
  view.append(t);
  const r = await api("GET", "/api/audit");
  for (const a of (r.data || [])) {
    t.append(el("tr", {}, el("td", {}, a.at), el("td", {}, a.who), el("td", {}, a.action), el("td", {}, a.subject), el("td", {}, a.detail)));
  }
}

/// A live run: what the journal says, drawn as it grows.
async function runPage(view, id) {
  const live = {
    t: 0, probes: {}, loads: {}, faults: {}, history: [], conditions: {}, findings: [], verdict: null, ended: false,
  };
  const head = el("div", { class: "card" });
  const stopBtn = can("operator")
    ? el("button", { type: "button", id: "stop", class: "danger", onclick: () => document.getElementById("confirm-stop").showModal() }, "STOP")
    : null;
  const rollback = el("p", { id: "rollback" });
  const files = el("p", { id: "files" });
  head.append(el("h1", {}, id), el("p", {}, el("span", { id: "run-state" }, "…"), " ", el("span", { id: "verdict", class: "verdict" })), stopBtn, rollback, files);
  const charts = el("div", { id: "charts" });
  const faults = el("ul", { id: "active-faults" });
  const conds = el("table", { id: "conditions" });
  const findings = el("ul", { id: "findings" });
  view.append(head,
    el("div", { class: "card" }, el("h2", {}, "Live charts"), charts),
    el("div", { class: "grid" },
      el("div", { class: "card" }, el("h2", {}, "Active faults"), faults),
      el("div", { class: "card" }, el("h2", {}, "Hypothesis and guardrails"), conds)),
    el("div", { class: "card" }, el("h2", {}, "Findings"), findings));

  const dialog = document.getElementById("confirm-stop");
  dialog.onclose = async () => {
    if (dialog.returnValue !== "stop") return;
    if (stopBtn) stopBtn.disabled = true;
    const r = await api("POST", `/api/runs/${encodeURIComponent(id)}/stop`);
    rollback.textContent = r.status === 202 ? "halting: rolling back every fault…" : ((r.data && r.data.error) || `refused (${r.status})`);
    refresh();
  };

  const refresh = async () => {
    const r = await api("GET", `/api/runs/${encodeURIComponent(id)}`);
    if (r.status !== 200) return;
    const run = r.data.run;
    const st = document.getElementById("run-state");
    if (!st) return;
    st.textContent = run.state;
    st.className = `state-${run.state}`;
    const v = document.getElementById("verdict");
    v.textContent = run.verdict || "";
    v.className = `verdict ${run.verdict || ""}`;
    if (stopBtn) stopBtn.hidden = run.state === "ended";
    const pending = r.data.pending_undo || [];
    const held = pending.map((p) => `${p.activity} (${p.undo})`).join("; ");
    if (run.state === "running") {
      rollback.textContent = pending.length ? `in the ledger (undone at the end, or on STOP): ${held}` : "";
    } else {
      rollback.textContent = pending.length
        ? `rolling back: ${pending.length} undo record(s) still in the ledger: ${held}`
        : (run.state === "ended" ? "rollback complete: the ledger holds nothing of this run" : "halting…");
    }
    files.replaceChildren(...(r.data.files || []).map((f) => el("a", { href: `/api/runs/${encodeURIComponent(id)}/files/${f}`, target: "_blank" }, f, " ")));
    if (r.data.gameday) files.append(el("a", { href: `#gameday/${encodeURIComponent(id)}`, id: "gameday-link" }, "game day: facilitator and responders"));
    if (run.state === "ended" && state.poll) { clearInterval(state.poll); state.poll = null; }
  };
  await refresh();
  state.poll = setInterval(refresh, 1000);

  const draw = () => {
    drawCharts(charts, live);
    faults.replaceChildren(...Object.entries(live.faults).map(([name, f]) =>
      el("li", { "data-fault": name }, el("strong", {}, name), ` ${f.kind} on ${f.target}: ${f.detail}`)));
    if (!Object.keys(live.faults).length) faults.append(el("li", { class: "muted" }, "none"));
    conds.replaceChildren(el("tr", {}, ...["condition", "role", "now", "samples", "failed", "deviations"].map((h) => el("th", {}, h))),
      ...Object.entries(live.conditions).map(([name, c]) => el("tr", { "data-condition": name },
        el("td", {}, name), el("td", {}, c.role),
        el("td", {}, el("span", { class: `pill ${c.ok ? "ok" : "bad"}` }, c.ok ? "holds" : "failing"), " ", el("span", { class: "muted" }, c.detail)),
        el("td", {}, c.samples), el("td", {}, c.failed), el("td", {}, c.deviations))));
    findings.replaceChildren(...live.findings.map((f) => el("li", {}, el("span", { class: "pill bad" }, f.severity), ` ${f.campaign}: ${f.title}`)));
    if (!live.findings.length) findings.append(el("li", { class: "muted" }, "none"));
  };

  const source = new EventSource(`/api/runs/${encodeURIComponent(id)}/events`);
  state.source = source;
  let pending = false;
  const seen = new Set();
  source.addEventListener("record", (ev) => {
    const r = JSON.parse(ev.data);
    if (seen.has(r.seq)) return; // a reconnect sends the journal again
    seen.add(r.seq);
    apply(live, r);
    if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); }
  });
  source.addEventListener("end", () => { source.close(); draw(); refresh(); });
  draw();
}

/// Folds one journal record into the page's state (the same events report.html reads).
function apply(live, r) {
  live.t = Math.max(live.t, r.t || 0);
  switch (r.type) {
    case "probe": {
      const p = live.probes[r.condition] || (live.probes[r.condition] = { role: r.role, points: [] });
      p.points.push({ t: r.t, ok: r.ok, ms: r.latency_ms });
      note(live, r.condition, r.role, r.ok, r.detail);
      break;
    }
    case "metric": note(live, r.condition, r.role, r.ok, r.value === null ? "no data" : `${r.value} vs ${r.bound}`); break;
    case "deviation": (live.conditions[r.condition] || note(live, r.condition, "hypothesis", false, r.detail)).deviations++; break;
    case "guardrail_tripped": note(live, r.condition, "guardrail", false, `tripped: ${r.detail}`); break;
    case "window": {
      if (!r.window) break;
      const l = live.loads[r.series] || (live.loads[r.series] = { points: [] });
      l.points.push({
        t: r.second * 1000, rps: r.window.completed, errors: r.window.errors, dropped: r.window.dropped || 0,
        p50: r.window.p50_ms, p90: r.window.p90_ms, p99: r.window.p99_ms,
      });
      break;
    }
    case "fault_applied":
      live.faults[r.activity] = { kind: r.kind, target: r.target, detail: r.detail };
      live.history.push({ name: r.activity, from: r.t, to: null });
      break;
    case "fault_rolled_back": {
      delete live.faults[r.activity];
      const h = live.history.slice().reverse().find((x) => x.name === r.activity && x.to === null);
      if (h) h.to = r.t;
      break;
    }
    case "finding": live.findings.push({ campaign: r.campaign, severity: r.severity, title: (r.finding && (r.finding.title || r.finding.rule)) || "finding" }); break;
    case "run_ended": live.verdict = r.verdict; live.ended = true; break;
    default: break;
  }
}

function note(live, name, role, ok, detail) {
  const c = live.conditions[name] || (live.conditions[name] = { role, ok: true, detail: "", samples: 0, failed: 0, deviations: 0 });
  c.ok = ok; c.detail = detail || ""; c.samples++;
  if (!ok) c.failed++;
  return c;
}

/// One chart per probe condition (latency, failed samples in red) and per load
/// (requests and errors per second), on one time axis with active faults shaded.
function drawCharts(box, live) {
  const end = Math.max(live.t, 1000);
  const charts = [];
  for (const [name, p] of Object.entries(live.probes)) charts.push({ name, kind: "probe", p });
  // Per load, report.html's two charts: requests, errors and dropped sends per second,
  // and latency p50 / p90 / p99 (seconds with no completed request have no latency).
  for (const [name, l] of Object.entries(live.loads)) {
    charts.push({ name, kind: "load", l });
    charts.push({ name, kind: "latency", l });
  }
  box.replaceChildren();
  if (!charts.length) { box.append(el("p", { class: "muted" }, "waiting for the first samples…")); return; }
  for (const c of charts) {
    const W = 1000, H = 140, L = 40, B = 18;
    const s = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "data-chart": c.name });
    const x = (t) => L + ((W - L - 5) * t) / end;
    for (const f of live.history) {
      s.append(svg("rect", { class: "fault", x: x(f.from), y: 0, width: Math.max(1, x(f.to === null ? live.t : f.to) - x(f.from)), height: H - B }));
    }
    s.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }));
    const label = (text, xx, yy) => { const t = svg("text", { x: xx, y: yy }); t.textContent = text; s.append(t); };
    label(`${(end / 1000).toFixed(0)}s`, W - 30, H - 4);
    label("0s", L, H - 4);
    let points = 0;
    if (c.kind === "probe") {
      const max = Math.max(1, ...c.p.points.map((q) => q.ms));
      label(`${max.toFixed(0)} ms`, 2, 12);
      for (const q of c.p.points) {
        s.append(svg("circle", { class: q.ok ? "ok" : "bad", cx: x(q.t), cy: H - B - ((H - B - 8) * q.ms) / max, r: 3 }));
        points++;
      }
    } else {
      const keys = c.kind === "load" ? [["rps", "series"], ["errors", "errors"], ["dropped", "dropped"]] : [["p50", "p50"], ["p90", "p90"], ["p99", "p99"]];
      const values = c.l.points.flatMap((q) => keys.map(([k]) => q[k]).filter((v) => typeof v === "number"));
      const max = Math.max(1, ...values);
      label(c.kind === "load" ? `${max} /s` : `${max >= 10 ? max.toFixed(0) : max.toFixed(2)} ms`, 2, 12);
      const path = (key, cls) => {
        // A second without a value (no request completed) breaks the line there.
        let pen = "M";
        const d = c.l.points.map((q) => {
          if (typeof q[key] !== "number") { pen = "M"; return ""; }
          const seg = `${pen}${x(q.t).toFixed(1)},${(H - B - ((H - B - 8) * q[key]) / max).toFixed(1)}`;
          pen = "L";
          return seg;
        }).filter(Boolean).join(" ");
        if (d) s.append(svg("path", { class: cls, d, "data-series": key }));
        // A lone second is a dot, not an empty line.
        for (const m of d.matchAll(/M([\d.]+),([\d.]+)(?![\d.]| L)/g)) s.append(svg("circle", { class: cls, cx: m[1], cy: m[2], r: 2 }));
      };
      for (const [key, cls] of keys) path(key, cls);
      points = c.l.points.length;
    }
    s.setAttribute("data-points", points);
    const caption = { probe: `${c.name}: probe latency (red: failed)`, load: `${c.name}: requests, errors (red) and dropped sends (grey) per second`, latency: `${c.name}: latency p50 / p90 / p99` }[c.kind];
    if (c.kind !== "probe") s.setAttribute("data-chart", c.kind === "load" ? c.name : `${c.name} latency`);
    box.append(el("figure", { class: "card" }, el("figcaption", {}, caption), s));
  }
}

document.addEventListener("DOMContentLoaded", start);
