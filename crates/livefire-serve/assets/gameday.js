// The Game day page of the console (#gameday/RUN): for operators, the facilitator's
// view (livefire-gameday's Board, from GET /api/runs/RUN/gameday/facilitator: every
// curveball with its kind and target, what is active and next, the marks) with a button
// to end a curveball early; for everyone, the responders' page of `livefire gameday`
// itself, mounted at /api/runs/RUN/gameday/ (its mark buttons only for operators).
// Uses app.js's el(), api(), can() and state.
"use strict";

async function gamedayPage(view, id) {
  const run = encodeURIComponent(id);
  view.append(el("h1", {}, `Game day ${id}`),
    el("p", {}, el("a", { href: `#run/${run}` }, "the run's live page"), " · ",
      el("a", { href: `/api/runs/${run}/gameday/`, target: "_blank", id: "responders-link" }, "the responders' page on its own")));
  if (can("operator")) {
    const now = el("p", { id: "now-next" }, "…");
    const said = el("p", { id: "facilitator-said", role: "status" });
    const balls = el("table", { id: "curveballs" });
    const events = el("ol", { id: "facilitator-events" });
    view.append(el("div", { class: "card", id: "facilitator" }, el("h2", {}, "Facilitator"), now, balls, said,
      el("h3", {}, "Marks, deviations, aborts"), events));
    const refresh = async () => {
      const r = await api("GET", `/api/runs/${run}/gameday/facilitator`);
      if (!document.getElementById("facilitator")) return;
      if (r.status !== 200) { now.textContent = (r.data && r.data.error) || `cannot load (${r.status})`; return; }
      const b = r.data;
      now.textContent = b.verdict ? `ended: ${b.verdict}` : b.now_and_next;
      balls.replaceChildren(el("tr", {}, ...["#", "curveball", "kind", "target", "state", ""].map((h) => el("th", {}, h))),
        ...b.curveballs.map((c) => el("tr", { "data-curveball": c.number },
          el("td", {}, c.number), el("td", {}, c.name), el("td", {}, c.kind), el("td", {}, c.target),
          el("td", { class: c.active ? "bad" : "" }, c.state),
          el("td", {}, c.active && !b.verdict ? el("button", { type: "button", class: "danger", onclick: async (ev) => {
            ev.target.disabled = true;
            const e = await api("POST", `/api/runs/${run}/gameday/end/${c.number}`);
            said.textContent = (e.data && (e.data.said || e.data.error)) || `answered ${e.status}`;
            refresh();
          } }, "End now") : null))));
      events.replaceChildren(...b.events.map((e) => el("li", {}, `t = ${(e.t_ms / 1000).toFixed(1)} s: ${e.line}`)));
      if (b.verdict && state.poll) { clearInterval(state.poll); state.poll = null; }
    };
    await refresh();
    state.poll = setInterval(refresh, 1000);
  }
  view.append(el("div", { class: "card" }, el("h2", {}, "Responders' page"),
    el("iframe", { class: "gameday", id: "responders", src: `/api/runs/${run}/gameday/`, title: "the responders' page" })));
}
