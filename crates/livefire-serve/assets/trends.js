// The Trends page of the console: one experiment's ended runs over time, from
// GET /api/experiments/NAME/trends. Three charts on one axis of runs (oldest left):
// time to recover per fault, each condition's margin to its bound, findings per run;
// and the same numbers as a table. Uses app.js's el() and svg().
"use strict";

/// `#trends` without a name (the nav's link): every experiment, each to its trends.
async function trendsIndex(view) {
  view.append(el("h1", {}, "Trends"), el("p", { class: "muted" }, "Pick an experiment: its ended runs, time to recover per fault, margins and findings, run after run."));
  const list = el("ul", { id: "trends-index" });
  view.append(list);
  const r = await api("GET", "/api/experiments");
  for (const e of (r.data || [])) {
    list.append(el("li", {}, el("a", { href: `#trends/${encodeURIComponent(e.name)}`, "data-experiment": e.name }, e.name)));
  }
  if (!list.children.length) list.append(el("li", { class: "muted" }, "no experiment uploaded yet"));
}

const TREND_COLORS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2", "#4b5563", "#be185d"];

async function trendsPage(view, name) {
  if (!name) return trendsIndex(view);
  view.append(el("h1", {}, `Trends: ${name}`),
    el("p", {}, el("a", { href: `#experiment/${encodeURIComponent(name)}` }, "the experiment"), " · ",
      el("span", { class: "muted" }, "each ended run of this experiment, oldest on the left")));
  const r = await api("GET", `/api/experiments/${encodeURIComponent(name)}/trends`);
  if (r.status !== 200) { view.append(el("p", { class: "error" }, (r.data && r.data.error) || `cannot load (${r.status})`)); return; }
  const t = r.data;
  if (!t.runs.length) {
    view.append(el("p", { class: "muted", id: "trends-empty" }, "No ended run of this experiment yet."));
  } else {
    const runs = t.runs;
    const recover = t.faults.map((f) => ({
      name: f,
      values: runs.map((run) => {
        const p = run.faults.find((x) => x.activity === f);
        return p && p.time_to_recover_ms !== null && p.time_to_recover_ms !== undefined ? p.time_to_recover_ms / 1000 : null;
      }),
    }));
    const margins = t.conditions.map((c) => ({
      name: c,
      values: runs.map((run) => {
        const p = run.conditions.find((x) => x.name === c);
        if (!p) return null;
        if (p.margin_pct !== null && p.margin_pct !== undefined) return p.margin_pct;
        // A probe condition: 100 % of its samples passing is the full margin.
        return p.failing_pct !== null && p.failing_pct !== undefined ? 100 - p.failing_pct : null;
      }),
    }));
    const findings = [{ name: "findings", values: runs.map((run) => run.findings) },
      { name: "failing findings", values: runs.map((run) => run.failing_findings) }];
    view.append(
      el("div", { class: "card" }, el("h2", {}, "Time to recover per fault (s)"), trendChart("chart-recover", runs, recover, { zero: true })),
      el("div", { class: "card" }, el("h2", {}, "Margin to the limit (% of the bound; below 0 is beyond it)"), trendChart("chart-margin", runs, margins, { zero: true, limit: 0 })),
      el("div", { class: "card" }, el("h2", {}, "Findings per run"), trendChart("chart-findings", runs, findings, { zero: true })),
      el("div", { class: "card" }, el("h2", {}, "Runs"), trendTable(runs, t)));
  }
  if (t.skipped.length) {
    view.append(el("div", { class: "card" }, el("h2", {}, "Not in the trend"),
      el("ul", {}, ...t.skipped.map((s) => el("li", {}, el("a", { href: `#run/${encodeURIComponent(s.id)}` }, s.id), `: ${s.why}`)))));
  }
}

/// Lines over the runs, one per series; a run without a value leaves a gap.
function trendChart(id, runs, series, opts) {
  const W = 1000, H = 220, L = 56, R = 12, T = 12, B = 34;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && Number.isFinite(v));
  let lo = Math.min(...all, opts.zero ? 0 : Infinity), hi = Math.max(...all, opts.limit !== undefined ? opts.limit : -Infinity);
  if (!Number.isFinite(lo)) lo = 0;
  if (!Number.isFinite(hi) || hi <= lo) hi = lo + 1;
  hi += (hi - lo) * 0.08;
  const x = (i) => L + (runs.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (runs.length - 1));
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const box = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "trend-chart", id, role: "img" });
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    box.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e5e7eb" }));
    const label = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7280" });
    // As many decimals as the span needs, so sub-second values do not all read "0.0".
    const span = Math.abs(hi - lo);
    label.textContent = span >= 10 ? v.toFixed(0) : v.toFixed(Math.min(3, Math.max(1, Math.ceil(-Math.log10(span / 4)) + 1)));
    box.append(label);
  }
  if (opts.limit !== undefined && opts.limit >= lo && opts.limit <= hi) {
    box.append(svg("rect", { x: L, y: y(opts.limit), width: W - L - R, height: Math.max(0, y(lo) - y(opts.limit)), fill: "#fee2e2" }));
    box.append(svg("line", { x1: L, x2: W - R, y1: y(opts.limit), y2: y(opts.limit), stroke: "#dc2626", "stroke-dasharray": "4 3" }));
  }
  runs.forEach((run, i) => {
    const label = svg("text", { x: x(i), y: H - 14, "text-anchor": "middle", "font-size": 11, fill: "#374151" });
    label.textContent = run.started.slice(5, 16).replace("T", " ");
    const title = svg("title", {});
    title.textContent = `${run.id}: ${run.verdict || ""}`;
    label.append(title);
    box.append(label);
  });
  series.forEach((s, k) => {
    const color = TREND_COLORS[k % TREND_COLORS.length];
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
      const dot = svg("circle", { cx: x(i), cy: y(v), r: 4, fill: color, "data-series": s.name });
      const title = svg("title", {});
      title.textContent = `${s.name}: ${Number.isInteger(v) ? v : v.toFixed(2)} (${runs[i].id})`;
      dot.append(title);
      box.append(dot);
    });
    if (d) box.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 2 }));
  });
  const legend = el("p", { class: "legend" }, ...series.map((s, k) => {
    const sw = el("span", { class: "sw" });
    sw.style.background = TREND_COLORS[k % TREND_COLORS.length];
    return el("span", {}, sw, s.name);
  }));
  return el("figure", { class: "trend" }, box, legend);
}

function trendTable(runs, t) {
  const head = ["run", "verdict", ...t.faults.map((f) => `${f}: recover`), ...t.conditions.map((c) => `${c}: margin`), "findings"];
  const table = el("table", { id: "trends" }, el("tr", {}, ...head.map((h) => el("th", {}, h))));
  for (const run of runs) {
    const cells = [el("td", {}, el("a", { href: `#run/${encodeURIComponent(run.id)}` }, run.id)),
      el("td", { class: `verdict ${run.verdict || ""}` }, run.verdict || "–")];
    for (const f of t.faults) {
      const p = run.faults.find((x) => x.activity === f);
      cells.push(el("td", {}, !p ? "–" : (p.time_to_recover_ms !== null ? `${(p.time_to_recover_ms / 1000).toFixed(1)} s` : (p.recovered ? "no impact" : "not recovered"))));
    }
    for (const c of t.conditions) {
      const p = run.conditions.find((x) => x.name === c);
      let text = "–";
      if (p && p.margin_pct !== null) text = `${p.margin_pct >= 0 ? "+" : ""}${p.margin_pct.toFixed(1)} % (worst ${p.worst} vs ${p.bound})`;
      else if (p && p.failing_pct !== null) text = `${p.failing_pct.toFixed(1)} % of samples failed`;
      cells.push(el("td", { class: p && !p.held ? "bad" : "" }, text));
    }
    cells.push(el("td", {}, `${run.findings}${run.failing_findings ? ` (${run.failing_findings} failing)` : ""}`));
    table.append(el("tr", { "data-run": run.id }, ...cells));
  }
  return table;
}
