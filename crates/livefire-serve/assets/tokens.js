// The Tokens page (after app.js, whose helpers it uses), for admins: every token with
// its role, when it was made and when it expires, Revoke (with a confirmation); and a
// form that makes one, showing the new token once, as `livefire serve token create`.
"use strict";

async function tokensPage(view) {
  view.append(el("h1", {}, "Tokens"));
  if (!can("admin")) {
    view.append(el("p", { class: "muted", id: "tokens-refused" }, "Only admins manage tokens."));
    return;
  }
  const table = el("table", { id: "tokens" }, el("tr", {}, ...["name", "role", "made", "expires", "state", ""].map((h) => el("th", {}, h))));
  const msg = el("p", { id: "token-msg", role: "status" });
  const r = await api("GET", "/api/tokens");
  const now = Date.now() / 1000;
  for (const t of (r.data || [])) {
    const expired = t.expires !== null && t.expires !== undefined && t.expires <= now;
    const stateWord = t.revoked ? "revoked" : (expired ? "expired" : "valid");
    const revoke = (t.revoked || t.name === state.me.name) ? "" : el("button", {
      class: "danger", "data-revoke": t.name,
      onclick: async () => {
        if (!window.confirm(`Revoke ${t.name}? Whoever holds it is refused from now on.`)) return;
        const d = await api("DELETE", `/api/tokens/${encodeURIComponent(t.name)}`);
        if (d.status === 200) route();
        else { msg.className = "error"; msg.textContent = (d.data && d.data.error) || `refused (${d.status})`; }
      },
    }, "Revoke");
    table.append(el("tr", { "data-token": t.name },
      el("td", {}, t.name), el("td", {}, t.role), el("td", {}, t.created),
      el("td", {}, t.expires ? new Date(t.expires * 1000).toISOString().replace(".000", "") : "never"),
      el("td", { class: stateWord === "valid" ? "" : "muted" }, stateWord), el("td", {}, revoke)));
  }
  const name = el("input", { id: "new-token-name", placeholder: "name (who holds it)", size: 24, required: true });
  const role = el("select", { id: "new-token-role" }, ...["viewer", "operator", "admin"].map((x) => el("option", { value: x }, x)));
  const expires = el("input", { id: "new-token-expires", placeholder: "expires after (e.g. 30d; empty: never)", size: 30 });
  const shown = el("p", { id: "new-token", class: "ok" });
  const form = el("form", { id: "token-form", class: "card" },
    el("h2", {}, "Make a token"),
    el("label", {}, "Name ", name), " ", el("label", {}, "Role ", role), " ", el("label", {}, "Expires ", expires), " ",
    el("button", { type: "submit", class: "primary" }, "Make"), shown);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim(), role: role.value };
    if (expires.value.trim()) body.expires = expires.value.trim();
    const m = await api("POST", "/api/tokens", body);
    if (m.status === 201) {
      shown.className = "ok";
      shown.replaceChildren(`Token for ${m.data.name} (${m.data.role}), shown once: `, el("code", { id: "new-token-value" }, m.data.token));
      name.value = ""; expires.value = "";
    } else {
      shown.className = "error";
      shown.textContent = (m.data && m.data.error) || `refused (${m.status})`;
    }
  });
  view.append(table, msg, form);
}
