// The responders' page: follows the run over Server-Sent Events (api/events) and sends
// marks to api/marks. Paths are relative, so the page works wherever it is mounted.
'use strict';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let who = params.get('as') || localStorage.getItem('livefire.responder') || '';
let responders = null;
let source = null;
let ended = false;

const secs = (ms) => (ms / 1000).toFixed(1) + ' s';
const ms = (v) => (v === null || v === undefined ? '–' : v.toFixed(1) + ' ms');

function connect() {
  if (source) source.close();
  const q = who ? '?as=' + encodeURIComponent(who) : '';
  source = new EventSource('api/events' + q);
  source.addEventListener('state', (e) => render(JSON.parse(e.data)));
  source.onopen = () => { $('conn').textContent = 'live'; $('conn').className = 'conn live'; };
  source.onerror = () => {
    $('conn').textContent = ended ? 'run ended' : 'reconnecting…';
    $('conn').className = 'conn';
  };
}

function setWho(name) {
  who = name;
  localStorage.setItem('livefire.responder', name);
  connect();
}

function fillWho(list) {
  if (responders && responders.join('\n') === list.join('\n')) return;
  responders = list;
  const select = $('who');
  const free = $('who-free');
  if (list.length === 0) {
    select.hidden = true;
    free.hidden = false;
    free.value = who;
    return;
  }
  select.replaceChildren(new Option('choose…', ''), ...list.map((r) => new Option(r, r)));
  select.value = list.includes(who) ? who : '';
}

function rows(tbody, items, cells) {
  tbody.replaceChildren(...items.map((item) => {
    const tr = document.createElement('tr');
    for (const c of cells(item)) {
      const td = document.createElement('td');
      if (typeof c === 'object') { td.textContent = c.text; td.className = c.cls; } else { td.textContent = c; }
      tr.append(td);
    }
    return tr;
  }));
}

function list(el, items, text, empty) {
  const lis = items.map((item) => {
    const li = document.createElement('li');
    li.textContent = text(item);
    return li;
  });
  if (lis.length === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = empty;
    lis.push(li);
  }
  el.replaceChildren(...lis);
}

function render(v) {
  $('title').textContent = v.title || 'Game day';
  document.title = (v.title || 'Game day') + ' · livefire game day';
  $('clock').textContent = 't = ' + secs(v.t_ms);
  $('phase').textContent = v.phase ? 'phase: ' + v.phase : '';
  fillWho(v.responders);
  const away = $('away');
  if (v.away) {
    away.hidden = false;
    away.textContent = `${who}: step out now, a key person is gone (${v.away.curveball}). ` +
      `Come back at t = ${secs(v.away.until_ms)}; your marks are refused until then.`;
  } else {
    away.hidden = true;
    away.textContent = '';
  }
  rows($('conditions').tBodies[0], v.conditions, (c) => [
    c.name + (c.role === 'guardrail' ? ' (guardrail)' : ''),
    c.ok === null ? { text: 'waiting', cls: 'wait' } : c.ok ? { text: 'holds', cls: 'ok' } : { text: 'failing', cls: 'bad' },
    c.detail,
    c.ok === null ? '' : 't = ' + secs(c.t_ms),
  ]);
  rows($('loads').tBodies[0], v.loads, (l) => [
    l.name,
    String(l.requests),
    { text: (100 * l.error_rate).toFixed(1) + ' %', cls: l.errors > 0 ? 'bad' : 'ok' },
    ms(l.p50_ms),
    ms(l.p99_ms),
  ]);
  list($('curveballs'), v.curveballs, (c) => c.active
    ? `${c.name}: active since t = ${secs(c.started_ms)}`
    : `${c.name}: t = ${secs(c.started_ms)} to ${secs(c.ended_ms)}`,
  v.hidden ? 'none revealed yet' : 'none yet');
  list($('deviations'), v.deviations, (d) => `t = ${secs(d.t_ms)}  ${d.condition}: ${d.detail}`, 'none');
  list($('findings'), v.findings, (f) => `t = ${secs(f.t_ms)}  ${f.severity}  ${f.title} (${f.operation})`, 'none');
  list($('marks'), v.marks, (m) => `t = ${secs(m.t_ms)}  ${m.mark} by ${m.responder}` +
    (m.note ? `: ${m.note}` : '') + ` (${m.via})`, 'none yet');
  ended = !!v.verdict;
  $('verdict').textContent = v.verdict ? 'The run ended: ' + v.verdict : '';
  for (const b of document.querySelectorAll('button[data-mark]')) b.disabled = ended;
}

function result(text, bad) {
  const el = $('mark-result');
  el.textContent = text;
  el.className = bad ? 'bad' : 'ok';
}

async function mark(kind) {
  const name = responders && responders.length ? $('who').value : $('who-free').value.trim();
  if (!name) { result('say who you are first', true); return; }
  const note = $('note').value.trim();
  try {
    // Mounted in `livefire serve`, the console puts its session's CSRF token here.
    const csrf = document.querySelector('meta[name="csrf-token"]');
    const headers = { 'Content-Type': 'application/json' };
    if (csrf) headers['X-CSRF-Token'] = csrf.content;
    const r = await fetch('api/marks', {
      method: 'POST',
      headers,
      body: JSON.stringify({ mark: kind, responder: name, note: note || undefined, via: 'page' }),
    });
    const body = await r.json().catch(() => ({ error: 'the game day answered ' + r.status }));
    if (r.ok) {
      result(`${body.mark} by ${body.responder} recorded at t = ${secs(body.t_ms)}`, false);
      $('note').value = '';
    } else {
      result(body.error, true);
    }
  } catch (e) {
    result('the game day did not answer: ' + e, true);
  }
}

$('who').addEventListener('change', (e) => setWho(e.target.value));
$('who-free').addEventListener('change', (e) => setWho(e.target.value.trim()));
for (const b of document.querySelectorAll('button[data-mark]')) {
  b.addEventListener('click', () => mark(b.dataset.mark));
}
connect();
