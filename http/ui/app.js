// Rota dashboard: a single page over the JSON API (docs/api.md).
// Plain JavaScript, no build step; embedded into rotad (scripts/embed.py).
//
// Safety: every value from the API is put in the page with text nodes
// (el() below, textContent); nothing is ever parsed as HTML.
'use strict';

const TOKEN_KEY = 'rotaToken';
const PAGE = 50;
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

const $ = (id) => document.getElementById(id);

// ---- DOM helpers: text only ------------------------------------------

// el('td', {class: 'num', onclick: fn}, 'text', node, ...): attributes by
// setAttribute, handlers by addEventListener, children as text nodes.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null) continue;
    e.append(k instanceof Node ? k : String(k));
  }
  return e;
}

function text(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function jobLink(id) {
  return el('a', {href: '#/jobs/' + encodeURIComponent(id), class: 'job-link'}, id);
}

function statusBadge(s) {
  return el('span', {class: 'status status-' + text(s)}, text(s));
}

function pre(v, cls) {
  return el('pre', {class: cls}, typeof v === 'string' ? v : JSON.stringify(v, null, 2));
}

// cols: [[heading, row => node or value, class?], ...]
function table(cols, rows, empty, rowAttrs) {
  if (!rows.length) return el('p', {class: 'empty'}, empty || 'none');
  const head = el('tr', {}, cols.map(([h]) => el('th', {}, h)));
  const body = rows.map((r) => el('tr', rowAttrs ? rowAttrs(r) : {},
    cols.map(([, f, cls]) => {
      const v = f(r);
      return el('td', {class: cls}, v instanceof Node ? v : text(v));
    })));
  return el('table', {}, el('thead', {}, head), el('tbody', {}, body));
}

function kv(pairs) {
  return el('table', {class: 'kv'}, pairs
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => el('tr', {}, el('th', {}, k),
      el('td', {}, v instanceof Node ? v : text(v)))));
}

// Replaces the children of #id with build()'s nodes, unless the data it
// shows did not change: a poll then leaves the page (and a button the user
// is about to click) alone.
const shown = {};
function render(id, data, build) {
  const key = JSON.stringify(data);
  if (shown[id] === key) return;
  $(id).replaceChildren(...[].concat(build()));
  shown[id] = key;
}

function button(label, act, cls) {
  return el('button', {type: 'button', class: cls || 'action', 'data-act': act}, label);
}

// ---- The API ------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(method, path, body) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  const init = {method, headers, cache: 'no-store'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const raw = await r.text();
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch (_) {
    data = raw;
  }
  if (!r.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(r.status, e.code || String(r.status),
      e.message || r.statusText || 'HTTP ' + r.status, e.field);
  }
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// ---- Messages, sign-in, permissions ---------------------------------------

function show(id, msg, cls) {
  const e = $(id);
  e.textContent = msg || '';
  e.hidden = !msg;
  if (cls !== undefined) e.className = cls;
}

function notice(msg, isError) {
  show('notice', msg, isError ? 'error' : '');
}

function setAuthUI() {
  const t = token();
  $('signin').hidden = !!t;
  $('signed-in').hidden = !t;
}

function resetPermissions() {
  document.body.classList.remove('read-only', 'no-admin');
  $('readonly').hidden = true;
}

// A 403 to an action: a read token hides every action; a submit token
// (the route needs admin) hides the admin ones; a queue or type limit is
// only reported.
function forbidden(e) {
  if (/token's role is read/.test(e.message)) {
    document.body.classList.add('read-only');
    show('readonly', 'This token is read-only: actions are hidden.');
  } else if (/needs a token with the admin role/.test(e.message)) {
    document.body.classList.add('no-admin');
    notice('This token cannot change queues or purge dead letters (admin only): ' +
      'those actions are hidden.', true);
  } else {
    notice('Not allowed: ' + e.message, true);
  }
}

// Runs an action after the user confirms it; reports its outcome.
async function act(question, fn) {
  if (!window.confirm(question)) return;
  notice('');
  try {
    const msg = await fn();
    if (msg) notice(msg);
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) forbidden(e);
    else if (e instanceof ApiError && e.status === 401) needToken();
    else notice(e.message, true);
  }
  refresh();
}

function needToken() {
  show('banner', token()
    ? 'This token is not known (expired or revoked?): sign in again.'
    : 'Access control is on: sign in with a token (a read token will do to look).');
  $('token').focus();
}

// ---- Routing ----------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const view = parts[0] || 'jobs';
  if (view === 'jobs' && parts[1]) return {view: 'job', id: decodeURIComponent(parts[1])};
  return {view: VIEWS[view] ? view : 'jobs', id: null};
}

function showView() {
  const r = route();
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + r.view;
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.dataset.view === r.view ||
      (r.view === 'job' && a.dataset.view === 'jobs'));
  }
  refresh();
}

// ---- Live refresh -------------------------------------------------------------

let refreshing = false;
let again = false;

// Renders the current view from fresh data. The only refresh entry point:
// the event stream, polling and actions call it.
async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    do {
      again = false;
      const r = route();
      try {
        await VIEWS[r.view](r.id);
        show('banner', '');
        $('status').textContent = 'Updated ' + new Date().toLocaleTimeString() + modeText;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) needToken();
        else show('banner', 'Cannot load: ' + e.message);
      }
    } while (again);
  } finally {
    refreshing = false;
  }
}

// ---- Following /v1/events ------------------------------------------------------
//
// While the stream is open ("live"), each event refreshes the views it
// concerns, at most once per EVENT_MS; a slow poll (LIVE_POLL_MS) still
// catches what has no event (heartbeats, a job becoming due). When the stream
// cannot be opened (404/405 from an older node, or OPEN_TRIES failures in a
// row) the page polls every POLL_MS as before and tries again after RETRY_MS.
// EventSource cannot send a token, so this is fetch() reading the body.
//
// Knob for tests and slow links: ?poll=MS in the page's URL sets POLL_MS.

const POLL_MS = pollKnob() || 2000;
const LIVE_POLL_MS = Math.max(POLL_MS, 15000);
const EVENT_MS = 300;
const OPEN_TRIES = 3;
const RETRY_MS = 30000;

function pollKnob() {
  const v = Number(new URLSearchParams(location.search).get('poll'));
  return Number.isInteger(v) && v >= 500 ? v : 0;
}

const live = {on: false, gen: 0, lastId: null, ctl: null, pollTimer: null, evTimer: null, evAt: 0};

function setLive(on) {
  const changed = live.on !== on;
  live.on = on;
  const e = $('live');
  e.textContent = on ? 'live' : 'polling';
  e.dataset.mode = on ? 'live' : 'polling';
  e.title = on ? 'Following the event stream (/v1/events)' : `Polling every ${POLL_MS / 1000} s`;
  if (changed) schedulePoll();
}

function schedulePoll() {
  clearTimeout(live.pollTimer);
  live.pollTimer = setTimeout(() => {
    if (!document.hidden) refresh();
    schedulePoll();
  }, live.on ? LIVE_POLL_MS : POLL_MS);
}

// Whether event EV changes what the current view shows.
function concerns(ev, name) {
  if (name.startsWith('events.')) return true; // Some were lost: reload.
  const r = route();
  if (r.view === 'job') {
    return [ev.job && ev.job.id, ev.schedule && ev.schedule.id, ev.run].includes(r.id);
  }
  if (r.view === 'workers') return /^(worker|job)\./.test(name);
  if (r.view === 'cluster') return name === 'leader.changed';
  return /^(job|schedule|events)\./.test(name);
}

// A refresh soon, but at most one per EVENT_MS however many events come.
function refreshSoon() {
  if (live.evTimer !== null) return;
  const wait = Math.max(0, live.evAt + EVENT_MS - Date.now());
  live.evTimer = setTimeout(() => {
    live.evTimer = null;
    live.evAt = Date.now();
    if (!document.hidden) refresh();
  }, wait);
}

function onEvent(name, data) {
  let ev = {};
  try {
    ev = JSON.parse(data);
  } catch (_) {
    // A comment-like or empty data: the name alone decides.
  }
  if (concerns(ev, name)) refreshSoon();
}

// Reads one SSE stream to its end: blocks of "field: value" lines, a blank
// line ends an event, lines starting with ':' are comments (keepalive).
async function readEvents(body, gen) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = {name: '', data: [], id: null};
  for (;;) {
    const {value, done} = await reader.read();
    if (done || gen !== live.gen) return;
    buf += value;
    const lines = buf.split('\n');
    buf = lines.pop();
    for (let line of lines) {
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (ev.id !== null) live.lastId = ev.id;
        if (ev.name || ev.data.length) onEvent(ev.name || 'message', ev.data.join('\n'));
        ev = {name: '', data: [], id: null};
        continue;
      }
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') ev.name = val;
      else if (field === 'data') ev.data.push(val);
      else if (field === 'id') ev.id = val;
    }
  }
}

// Opens the stream (resuming after the last id seen) and follows it to its
// end. Returns how it went: 'ended' after it was open, 'old' if the node has
// no stream, 'failed' otherwise.
async function streamOnce(gen) {
  const headers = {Accept: 'text/event-stream'};
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  if (live.lastId) headers['Last-Event-ID'] = live.lastId;
  live.ctl = new AbortController();
  let r;
  try {
    r = await fetch('/v1/events', {headers, cache: 'no-store', signal: live.ctl.signal});
  } catch (_) {
    return 'failed';
  }
  if (r.status === 404 || r.status === 405) return 'old';
  if (!r.ok || !r.body) return 'failed';
  setLive(true);
  refresh(); // What changed before the stream opened.
  try {
    await readEvents(r.body, gen);
  } catch (_) {
    // The connection broke: reconnect below.
  }
  return 'ended';
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// Follows the stream until the next follow() (sign-in, sign-out) replaces it.
async function follow() {
  const gen = ++live.gen;
  if (live.ctl) live.ctl.abort();
  live.lastId = null; // A new token may see other events: start afresh.
  let delay = 1000;
  let failures = 0;
  while (gen === live.gen) {
    const opened = Date.now();
    const how = await streamOnce(gen);
    if (gen !== live.gen) return;
    setLive(false);
    if (how === 'ended') {
      failures = 0;
      if (Date.now() - opened > 10000) delay = 1000;
    } else if (how === 'old' || ++failures >= OPEN_TRIES) {
      failures = 0;
      delay = 1000;
      await sleep(RETRY_MS);
      continue;
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 10000);
  }
}

function startLive() {
  setLive(false);
  schedulePoll();
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });
  follow();
}

// ---- Jobs ---------------------------------------------------------------

const jobsPage = {cursors: [null], page: 0, next: null};

function formValues(id) {
  return Object.fromEntries(new FormData($(id)).entries());
}

function jobActions(j) {
  const out = [];
  if (!FINISHED.has(j.status)) {
    out.push(button('Cancel', 'cancel', 'action danger'));
    out[out.length - 1].addEventListener('click', () =>
      act(`Cancel job ${j.id}?`, async () => {
        await api('DELETE', '/v1/jobs/' + encodeURIComponent(j.id));
        return `Job ${j.id} cancelled.`;
      }));
  }
  if (j.status === 'failed' || j.status === 'cancelled') {
    out.push(button('Retry', 'retry'));
    out[out.length - 1].addEventListener('click', () =>
      act(`Retry job ${j.id}?`, async () => {
        await api('POST', '/v1/jobs/' + encodeURIComponent(j.id) + '/retry');
        return `Job ${j.id} queued again.`;
      }));
  }
  return el('span', {class: 'actions'}, out);
}

function jobRows(jobs, withError) {
  const cols = [
    ['Id', (j) => jobLink(j.id)],
    ['Name', (j) => j.name],
    ['Type', (j) => j.type],
    ['Queue', (j) => j.queue],
    ['Status', (j) => statusBadge(j.status)],
    ['Priority', (j) => j.priority, 'num'],
    ['Attempts', (j) => `${j.attempts}/${j.max_attempts}`, 'num'],
  ];
  if (withError) cols.push(['Last error', (j) => j.last_error], ['Finished', (j) => j.finished_at]);
  else cols.push(['Created', (j) => j.created_at]);
  cols.push(['', jobActions]);
  return table(cols, jobs, 'No jobs.', (j) => ({'data-id': j.id}));
}

async function viewJobs() {
  const f = formValues('job-filters');
  const data = await api('GET', '/v1/jobs' + query({
    status: f.status, queue: f.queue, type: f.type, user_id: f.user_id,
    order: f.order, limit: PAGE, cursor: jobsPage.cursors[jobsPage.page],
  }));
  jobsPage.next = data.next_cursor || null;
  let jobs = data.jobs;
  const t = f.text.trim().toLowerCase();
  if (t) {
    jobs = jobs.filter((j) => j.id.includes(t) || text(j.name).toLowerCase().includes(t));
    if (!jobs.length && /^[0-9a-f]{16}$/.test(t)) {
      try {
        jobs = [await api('GET', '/v1/jobs/' + t)];
      } catch (e) {
        if (e.status !== 404) throw e;
      }
    }
  }
  render('jobs-table', jobs, () => jobRows(jobs, false));
  $('jobs-page').textContent = 'Page ' + (jobsPage.page + 1);
  $('jobs-prev').disabled = jobsPage.page === 0;
  $('jobs-first').disabled = jobsPage.page === 0;
  $('jobs-next').disabled = !jobsPage.next;
}

function resetJobsPaging() {
  jobsPage.cursors = [null];
  jobsPage.page = 0;
  refresh();
}

// ---- One job --------------------------------------------------------------

function scheduleActions(j) {
  const id = encodeURIComponent(j.id);
  const b = [];
  const add = (label, name, question, fn) => {
    const x = button(label, name);
    x.addEventListener('click', () => act(question, fn));
    b.push(x);
  };
  if (j.paused) {
    add('Resume schedule', 'resume', `Resume schedule ${j.id}?`, async () => {
      await api('POST', `/v1/jobs/${id}/resume`);
      return 'Schedule resumed.';
    });
  } else {
    add('Pause schedule', 'pause', `Pause schedule ${j.id}?`, async () => {
      await api('POST', `/v1/jobs/${id}/pause`);
      return 'Schedule paused.';
    });
  }
  add('Run now', 'trigger', `Run schedule ${j.id} now?`, async () => {
    const run = await api('POST', `/v1/jobs/${id}/trigger`);
    return `Run ${run.id} started.`;
  });
  return b;
}

function dagSection(j, wf) {
  const out = [];
  if (j.depends_on && j.depends_on.length) {
    out.push(el('h2', {}, 'Depends on'),
      el('p', {class: 'parents'}, j.depends_on.map((d) => [jobLink(d), ' '])));
  }
  if (wf) {
    const children = wf.jobs.filter((x) => (x.depends_on || []).includes(j.id));
    out.push(el('h2', {}, 'Workflow'),
      kv([['Id', wf.id], ['Name', wf.name], ['Status', statusBadge(wf.status)]]));
    out.push(el('h2', {}, 'Jobs depending on this one'),
      children.length ? el('p', {class: 'children'}, children.map((c) => [jobLink(c.id), ' ']))
        : el('p', {class: 'empty'}, 'none'));
  }
  return out;
}

function runsSection(data) {
  return [el('h2', {}, 'Schedule runs'), table([
    ['Nominal time', (r) => r.nominal_at],
    ['Job', (r) => (r.job_id ? jobLink(r.job_id) : '')],
    ['Outcome', (r) => statusBadge(r.outcome)],
    ['Recorded', (r) => r.recorded_at],
    ['Error or reason', (r) => r.error || r.reason],
  ], data.runs || [], 'No runs yet.')];
}

async function viewJob(id) {
  const j = await api('GET', '/v1/jobs/' + encodeURIComponent(id));
  const runs = j.recurring
    ? await api('GET', `/v1/jobs/${encodeURIComponent(j.id)}/runs?limit=50`) : null;
  const wf = j.workflow_id
    ? await api('GET', '/v1/workflows/' + encodeURIComponent(j.workflow_id)) : null;
  render('job-detail', [j, runs, wf], () => jobDetail(j, runs, wf));
}

function jobDetail(j, runs, wf) {
  const parts = [el('h2', {class: 'job-title'}, 'Job ', j.id, j.name ? ' \u2014 ' + j.name : '')];
  parts.push(el('div', {class: 'actions'}, jobActions(j), j.recurring ? scheduleActions(j) : []));
  parts.push(kv([
    ['Status', statusBadge(j.status)], ['Name', j.name], ['Type', j.type], ['Queue', j.queue],
    ['Priority', j.priority], ['User', j.user_id], ['Attempts', `${j.attempts}/${j.max_attempts}`],
    ['Waiting for', j.waiting_for], ['Schedule', j.schedule], ['Timezone', j.timezone],
    ['Paused', j.recurring ? String(j.paused) : null], ['Next run', j.next_run_at],
    ['Run at', j.run_at], ['Schedule id', j.schedule_id ? jobLink(j.schedule_id) : null],
    ['Timeout', j.timeout], ['Tags', j.tags], ['Idempotency key', j.idempotency_key],
    ['Concurrency key', j.concurrency_key], ['Worker', j.worker_id],
    ['Lease token', j.lease_token], ['Exit code', j.exit_code],
    ['Created', j.created_at], ['Updated', j.updated_at],
    ['Started', j.started_at], ['Finished', j.finished_at],
  ]));
  parts.push(el('h2', {}, 'Payload'), pre(j.payload, 'payload'));
  if (j.result !== null && j.result !== undefined) parts.push(el('h2', {}, 'Result'), pre(j.result, 'result'));
  if (j.output) parts.push(el('h2', {}, 'Output'), pre(j.output, 'output'));
  if (j.last_error) parts.push(el('h2', {}, 'Error'), pre(j.last_error, 'error'));
  parts.push(el('h2', {}, 'Attempts'), table([
    ['#', (a) => a.attempt, 'num'], ['Outcome', (a) => statusBadge(a.outcome)],
    // Who ran it: the name and host as the worker registered (kept after it
    // is gone); attempts recorded before those fields show the id alone.
    ['Worker', (a) => a.worker_name || a.worker_id], ['Host', (a) => a.worker_host],
    ['Worker id', (a) => a.worker_id], ['Exit', (a) => a.exit_code, 'num'],
    ['Started', (a) => a.started_at], ['Finished', (a) => a.finished_at],
    ['Error', (a) => a.error], ['Output', (a) => (a.output ? pre(a.output) : '')],
  ], j.history || [], 'No finished attempts.'));
  if (runs) parts.push(...runsSection(runs));
  parts.push(...dagSection(j, wf));
  return parts;
}

// ---- Dead letters -----------------------------------------------------------

async function viewDlq() {
  const f = formValues('dlq-filters');
  const data = await api('GET', '/v1/dlq' + query({queue: f.queue, type: f.type, limit: PAGE, order: 'desc'}));
  render('dlq-table', data, () => [jobRows(data.jobs, true),
    data.next_cursor ? el('p', {class: 'empty'}, `Showing the newest ${PAGE}.`) : '']);
}

// Repeats a bulk request while the server says more match.
async function bulk(method, path) {
  let total = 0;
  for (let i = 0; i < 10000; i++) {
    const r = await api(method, path);
    total += r.retried !== undefined ? r.retried : r.deleted;
    if (!r.more) break;
  }
  return total;
}

function dlqFilterText(f) {
  const parts = [];
  if (f.queue) parts.push(`queue ${f.queue}`);
  if (f.type) parts.push(`type ${f.type}`);
  return parts.length ? ' (' + parts.join(', ') + ')' : '';
}

// ---- Queues, workers, cluster ---------------------------------------------------

function queueActions(q) {
  const name = encodeURIComponent(q.name);
  const pause = button(q.paused ? 'Resume' : 'Pause', q.paused ? 'resume' : 'pause', 'action admin');
  pause.addEventListener('click', () =>
    act(`${q.paused ? 'Resume' : 'Pause'} queue ${q.name}?`, async () => {
      await api('PUT', '/v1/queues/' + name, {paused: !q.paused});
      return `Queue ${q.name} ${q.paused ? 'resumed' : 'paused'}.`;
    }));
  const conc = button('Set concurrency', 'concurrency', 'action admin');
  conc.addEventListener('click', async () => {
    const v = window.prompt(`Concurrency of queue ${q.name} (0: no cap)`, String(q.concurrency || 0));
    if (v === null) return;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) {
      notice('Concurrency must be a whole number, 0 or more.', true);
      return;
    }
    await act(`Set the concurrency of queue ${q.name} to ${n || 'no cap'}?`, async () => {
      await api('PUT', '/v1/queues/' + name, {concurrency: n || null});
      return `Queue ${q.name}: concurrency ${n || 'no cap'}.`;
    });
  });
  return el('span', {class: 'actions'}, pause, conc);
}

const COUNTS = ['scheduled', 'waiting', 'pending', 'running', 'completed', 'failed', 'cancelled'];

async function viewQueues() {
  const data = await api('GET', '/v1/queues');
  const cols = [
    ['Queue', (q) => q.name],
    ['Paused', (q) => (q.paused ? 'paused' : '')],
    ['Concurrency', (q) => q.concurrency || 'no cap', 'num'],
    ['Max pending', (q) => q.max_pending || 'no cap', 'num'],
  ];
  for (const s of COUNTS) cols.push([s, (q) => (q.counts && q.counts[s]) || 0, 'num']);
  cols.push(['', queueActions]);
  render('queues-table', data, () => table(cols, data.queues, 'No queues yet.',
    (q) => ({'data-queue': q.name})));
}

async function viewWorkers() {
  const data = await api('GET', '/v1/workers');
  render('workers-table', data, () => table([
    ['Id', (w) => w.id], ['Name', (w) => w.name], ['Host', (w) => w.host],
    ['Queues', (w) => [].concat(w.queues || []).join(', ')],
    ['Types', (w) => w.types || 'all but shell'],
    ['Running', (w) => `${w.running}/${w.concurrency}`, 'num'],
    ['Last heartbeat', (w) => w.last_heartbeat],
    ['State', (w) => statusBadge(w.state)],
  ], data.workers, 'No workers registered.', (w) => ({'data-worker': w.name})));
}

let modeText = '';

async function viewCluster() {
  const c = await api('GET', '/v1/cluster');
  setMode(c);
  render('cluster-info', c, () => [kv([
    ['Mode', c.secure ? 'secure (TLS, access control)' : 'insecure'],
    ['This node', c.self], ['Term', c.term],
    ['Leader', c.leader ? `${c.leader.id} (${text(c.leader.http_addr)})` : 'none known'],
    ['Applied index', c.applied_index], ['Commit index', c.commit_index],
  ]), el('h2', {}, 'Members'), table([
    ['Id', (n) => n.id], ['Role', (n) => n.role], ['Voter', (n) => (n.voter ? 'yes' : 'no')],
    ['Raft address', (n) => n.raft_addr], ['HTTP address', (n) => n.http_addr],
    ['Applied index', (n) => n.applied_index, 'num'],
  ], c.nodes, 'No members.', (n) => ({'data-node': n.id}))]);
}

function setMode(c) {
  modeText = c.secure ? ' \u00b7 secure cluster' : ' \u00b7 insecure cluster';
}

const VIEWS = {
  jobs: viewJobs, job: viewJob, dlq: viewDlq,
  queues: viewQueues, workers: viewWorkers, cluster: viewCluster,
};

// ---- Start ----------------------------------------------------------------------

function wire() {
  $('signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    resetPermissions();
    notice('');
    setAuthUI();
    refresh();
    follow();
  });
  $('signout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    for (const id of Object.keys(shown)) {
      delete shown[id];
      $(id).replaceChildren(); // Nothing seen with the token stays.
    }
    resetPermissions();
    notice('');
    setAuthUI();
    refresh();
    follow();
  });
  $('job-filters').addEventListener('change', resetJobsPaging);
  $('job-filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('job-text').addEventListener('input', () => refresh());
  $('jobs-next').addEventListener('click', () => {
    if (!jobsPage.next) return;
    jobsPage.cursors[jobsPage.page + 1] = jobsPage.next;
    jobsPage.page++;
    refresh();
  });
  $('jobs-prev').addEventListener('click', () => {
    if (jobsPage.page > 0) jobsPage.page--;
    refresh();
  });
  $('jobs-first').addEventListener('click', resetJobsPaging);
  $('dlq-filters').addEventListener('change', () => refresh());
  $('dlq-filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('dlq-retry').addEventListener('click', () => {
    const f = formValues('dlq-filters');
    act(`Retry every dead letter${dlqFilterText(f)}?`, async () =>
      `${await bulk('POST', '/v1/dlq/retry' + query({queue: f.queue, type: f.type}))} dead letters retried.`);
  });
  $('dlq-purge').addEventListener('click', () => {
    const f = formValues('dlq-filters');
    act(`Delete every dead letter${dlqFilterText(f)} for good?`, async () =>
      `${await bulk('DELETE', '/v1/dlq' + query({queue: f.queue, type: f.type}))} dead letters deleted.`);
  });
  $('dlq-purge').classList.add('admin');
  window.addEventListener('hashchange', () => {
    notice(''); // An action's outcome belongs to the screen it was done on.
    showView();
  });
}

async function start() {
  wire();
  setAuthUI();
  try {
    setMode(await api('GET', '/v1/cluster'));
  } catch (_) {
    // Shown by the first refresh.
  }
  showView();
  startLive();
}

start();
