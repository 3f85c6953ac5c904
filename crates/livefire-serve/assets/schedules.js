// Schedules and approvals in the console (after app.js, whose helpers it uses): the
// Schedules page (admins make and delete them), the runs waiting for a second person's
// approval with Approve and Reject (which asks why) for those who may, the recent
// decisions with their reasons, and the environment and variables a run is started with.
"use strict";

/// The environment and variables a run starts with; `.body(name)` is the POST body.
function launchFields(prefix) {
  const env = el("input", { id: `${prefix}-env`, placeholder: "environment (optional)", size: 22 });
  const vars = el("textarea", { id: `${prefix}-vars`, class: "vars", placeholder: "variables, one a line: NAME=VALUE", spellcheck: "false" });
  const box = el("div", { class: "launch" }, el("label", {}, "Environment ", env), el("label", {}, "Variables ", vars));
  box.body = (experiment) => {
    const body = { experiment };
    if (env.value.trim()) body.env = env.value.trim();
    const v = {};
    for (const line of vars.value.split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) v[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    if (Object.keys(v).length) body.vars = v;
    return body;
  };
  return box;
}

/// What starting a run answered: its page (201), or that it waits for approval (202).
function started(s, msg) {
  if (s.status === 201) { location.hash = `#run/${encodeURIComponent(s.data.id)}`; return; }
  msg.className = s.status === 202 ? "ok" : "error";
  msg.textContent = (s.data && (s.data.message || s.data.error)) || `refused (${s.status})`;
}

// ---- approvals -------------------------------------------------------------------

/// Asks why a run is rejected; resolves to the reason, or null when cancelled.
function askReason(id) {
  const reason = el("textarea", { id: "reject-reason", required: true, maxlength: 1000, placeholder: "why (the one who asked and the audit log see it)" });
  const dialog = el("dialog", { id: "reject-dialog" },
    el("form", { method: "dialog" },
      el("p", {}, el("strong", {}, `Reject ${id}?`), " It will not run."),
      el("label", {}, "Reason ", reason),
      el("p", {},
        el("button", { id: "reject-confirm", value: "reject", class: "danger" }, "Reject"), " ",
        el("button", { type: "button", value: "cancel", onclick: () => dialog.close("cancel") }, "Keep it waiting"))));
  document.body.append(dialog);
  return new Promise((done) => {
    dialog.onclose = () => { dialog.remove(); done(dialog.returnValue === "reject" ? reason.value.trim() : null); };
    dialog.showModal();
  });
}

/// Runs waiting for a second person (shown before `anchor`), with Approve and Reject
/// for an operator or admin who did not ask for them; then the recent decisions.
async function approvalsPanel(anchor) {
  const box = el("div", { class: "card", id: "pending" });
  anchor.before(box);
  const r = await api("GET", "/api/approvals");
  const all = r.data || [];
  const waiting = all.filter((a) => a.state === "awaiting approval");
  const decided = all.filter((a) => a.state !== "awaiting approval").slice(0, 10);
  if (!waiting.length && !decided.length) { box.remove(); return; }
  const vars = (a) => Object.keys(a.vars).map((k) => `${k}=***`).join(" ");
  const msg = el("p", { id: "approval-error", class: "error", role: "alert" });
  const t = el("table", { id: "approvals" }, el("tr", {}, ...["waiting", "experiment", "environment", "variables", "asked by", "since", "expires", ""].map((h) => el("th", {}, h))));
  for (const a of waiting) {
    const mine = state.me && a.requester === state.me.name;
    const decide = (verb) => async () => {
      let body;
      if (verb === "reject") {
        const why = await askReason(a.id);
        if (!why) return;
        body = { reason: why };
      }
      const d = await api("POST", `/api/approvals/${encodeURIComponent(a.id)}/${verb}`, body);
      if (d.status === 201 && d.data.run_id) location.hash = `#run/${encodeURIComponent(d.data.run_id)}`;
      else if (d.status === 200) route();
      else msg.textContent = (d.data && d.data.error) || `refused (${d.status})`;
    };
    const actions = !can("operator")
      ? el("span", { class: "muted" }, "an operator or admin decides")
      : mine
        ? el("span", { class: "muted" }, "you asked: another operator or admin decides")
        : el("span", {},
          el("button", { type: "button", class: "primary approve", onclick: decide("approve") }, "Approve"), " ",
          el("button", { type: "button", class: "reject", onclick: decide("reject") }, "Reject"));
    t.append(el("tr", { "data-approval": a.id },
      el("td", { class: "state-awaiting" }, a.id), el("td", {}, a.experiment), el("td", {}, el("span", { class: "pill bad" }, `${a.env} (production)`)),
      el("td", {}, vars(a)),
      el("td", {}, a.requested_by), el("td", {}, a.requested), el("td", {}, a.expires || "never"), el("td", {}, actions)));
  }
  if (waiting.length) box.append(el("h2", {}, "Awaiting approval"), t, msg);
  if (!decided.length) return;
  const d = el("table", { id: "decided" }, el("tr", {}, ...["request", "experiment", "environment", "asked by", "decision", "by", "reason"].map((h) => el("th", {}, h))));
  for (const a of decided) {
    d.append(el("tr", { "data-approval": a.id },
      el("td", {}, a.id), el("td", {}, a.experiment), el("td", {}, a.env), el("td", {}, a.requested_by),
      el("td", { class: `decision ${a.state}` }, a.run_id ? `${a.state}: ${a.run_id}` : a.state),
      el("td", {}, a.decided_by || (a.state === "expired" ? `nobody by ${a.expires}` : "–")),
      el("td", { class: "reason" }, a.reason || "–")));
  }
  box.append(el("h2", {}, "Recent decisions"), d);
}

// ---- schedules -------------------------------------------------------------------

async function schedulesPage(view) {
  view.append(el("h1", {}, "Schedules"), el("p", { class: "muted" }, "Cron in UTC. A firing missed while the server was down is logged, not run late; one whose targets are held by a run still going is skipped, with the reason."));
  const t = el("table", { id: "schedules" }, el("tr", {}, ...["name", "cron", "runs", "next", "last firing", "made by", ""].map((h) => el("th", {}, h))));
  view.append(t);
  const msg = el("p", { id: "schedule-error", class: "error", role: "alert" });
  const r = await api("GET", "/api/schedules");
  for (const s of (r.data || [])) {
    const what = [s.experiment, s.env ? `in ${s.env}` : "", ...Object.keys(s.vars).map((k) => `${k}=***`)].filter(Boolean).join(" ");
    const del = can("admin")
      ? el("button", { type: "button", class: "delete", onclick: async () => {
        if (!confirm(`Delete the schedule ${s.name}?`)) return;
        const d = await api("DELETE", `/api/schedules/${encodeURIComponent(s.name)}`);
        if (d.status === 200) route(); else msg.textContent = (d.data && d.data.error) || `refused (${d.status})`;
      } }, "Delete")
      : null;
    t.append(el("tr", { "data-schedule": s.name },
      el("td", {}, s.name), el("td", {}, el("code", {}, s.cron)), el("td", {}, what),
      el("td", {}, s.next || "–"), el("td", {}, s.last_result ? `${s.last_fired}: ${s.last_result}` : "never fired"),
      el("td", {}, s.owner === s.created_by || s.created_by.startsWith(`${s.owner} (`) ? s.created_by : `${s.created_by} for ${s.owner}`), el("td", {}, del)));
  }
  if (!can("admin")) { view.append(el("p", { class: "muted" }, "Admins make and delete schedules.")); return; }
  const name = el("input", { id: "schedule-name", placeholder: "name", size: 20 });
  const cron = el("input", { id: "schedule-cron", placeholder: "0 9 1 * *", size: 20 });
  const exp = el("select", { id: "schedule-experiment" });
  const e = await api("GET", "/api/experiments");
  for (const x of (e.data || [])) exp.append(el("option", { value: x.name }, x.name));
  const launch = launchFields("schedule");
  const create = el("button", { type: "button", id: "schedule-create", class: "primary", onclick: async () => {
    msg.textContent = "";
    const body = launch.body(exp.value);
    body.name = name.value.trim();
    body.cron = cron.value.trim();
    const c = await api("POST", "/api/schedules", body);
    if (c.status === 201) route(); else msg.textContent = (c.data && c.data.error) || `refused (${c.status})`;
  } }, "Make the schedule");
  view.append(el("div", { class: "card", id: "schedule-form" }, el("h2", {}, "New schedule"),
    el("p", {}, el("label", {}, "Name ", name), " ", el("label", {}, "Cron ", cron), " ", el("label", {}, "Experiment ", exp)),
    el("p", { class: "muted" }, "minute hour day-of-month month day-of-week (UTC); a 6th field first is seconds. `0 9 1 * *`: 09:00 on the 1st of every month."),
    launch, el("p", {}, create), msg));
}
