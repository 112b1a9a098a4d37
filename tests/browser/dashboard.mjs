// Drives the dashboard in Debian's headless chromium (puppeteer-core).
// Run by test_dashboard.py: node dashboard.mjs CONFIG.json
//
// CONFIG: {"scenario": "insecure"|"secure", "base": "http(s)://node",
//          "shots": dir for screenshots, "ids": {...jobs made by pytest},
//          "tokens": {"admin": ..., "read": ...} (secure)}
// Prints one JSON line {"ok": true, ...} last; any failed check throws
// (exit 1) with its reason. pytest then checks the effects through the API.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const WAIT = 15000;

// ---- API calls from node (fetch; HTTPS trusts NODE_EXTRA_CA_CERTS) ----
async function api(method, p, body, tok) {
  const headers = {'Content-Type': 'application/json'};
  const t = tok === undefined ? cfg.tokens?.admin : tok;
  if (t) headers.Authorization = 'Bearer ' + t;
  const r = await fetch(cfg.base + p, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await r.json().catch(() => null);
  return {status: r.status, data};
}

async function poll(what, fn, timeout = WAIT) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

async function job(id) {
  const r = await api('GET', `/v1/jobs/${id}?consistency=linearizable`);
  assert.equal(r.status, 200, JSON.stringify(r.data));
  return r.data;
}

// ---- The browser --------------------------------------------------------
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  acceptInsecureCerts: true, // The secure cluster's own CA.
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const page = await browser.newPage();
await page.setViewport({width: 1280, height: 800});
const dialogs = [];
const pageErrors = [];
let promptAnswer = null;
page.on('dialog', async (d) => {
  dialogs.push({type: d.type(), message: d.message()});
  if (d.type() === 'confirm') await d.accept();
  else if (d.type() === 'prompt' && promptAnswer !== null) await d.accept(promptAnswer);
  else await d.dismiss();
});
page.on('pageerror', (e) => pageErrors.push(String(e)));

async function shot(name) {
  fs.mkdirSync(cfg.shots, {recursive: true});
  await page.screenshot({path: path.join(cfg.shots, `dashboard-${name}.png`), fullPage: true});
}

async function go(hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

// Clicks the button data-act=ACT inside SCOPE once it is there and visible.
async function click(scope, act) {
  const sel = `${scope} button[data-act="${act}"]`;
  await page.waitForFunction((s) => {
    const b = document.querySelector(s);
    return b && b.offsetParent !== null;
  }, {timeout: WAIT}, sel);
  await clickSel(sel);
}

// A click on SEL, again if a refresh replaced the element under it.
async function clickSel(sel) {
  await poll(`a click on ${sel}`, async () => {
    await page.click(sel);
    return true;
  });
}

async function visibleActions() {
  return page.$$eval('button.action', (bs) => bs.filter((b) => b.offsetParent !== null).length);
}

const ok = {};

async function insecure() {
  const ids = cfg.ids;
  await page.goto(cfg.base + '/', {waitUntil: 'load'});
  assert.equal(await page.title(), 'Rota');
  // A job submitted through the API appears (newest first: at the top).
  const hello = (await api('POST', '/v1/jobs', {type: 'noop', name: 'dash-hello', queue: 'dash-idle'})).data;
  await page.waitForSelector(`#jobs-table tr[data-id="${hello.id}"]`, {timeout: WAIT});
  const first = await page.$eval('#jobs-table tbody tr', (tr) => tr.dataset.id);
  assert.equal(first, hello.id, 'the newest job is the first row');
  // The text box narrows the page to one job.
  await page.type('#job-text', 'dash-hello');
  await page.waitForFunction(() => document.querySelectorAll('#jobs-table tbody tr').length === 1, {timeout: WAIT});
  await shot('jobs');
  await page.$eval('#job-text', (e) => { e.value = ''; e.dispatchEvent(new Event('input')); });
  // Its detail opens from the list.
  await clickSel(`#jobs-table tr[data-id="${hello.id}"] a.job-link`);
  await page.waitForFunction((id) => {
    const t = document.querySelector('#view-job:not([hidden]) .job-title');
    return t && t.textContent.includes(id);
  }, {timeout: WAIT}, hello.id);
  await page.waitForFunction(() => document.querySelector('#job-detail pre.payload') !== null, {timeout: WAIT});
  ok.detail = hello.id;

  // A running sleep job is cancelled from its detail page.
  await poll('the sleep job running', async () => (await job(ids.sleep)).status === 'running');
  await go(`#/jobs/${ids.sleep}`);
  await page.waitForFunction((id) => {
    const t = document.querySelector('#view-job:not([hidden]) .job-title');
    return t && t.textContent.includes(id) && document.querySelector('#job-detail .status-running');
  }, {timeout: WAIT}, ids.sleep);
  await shot('job');
  await click('#job-detail', 'cancel');
  await poll('the sleep job cancelled', async () => (await job(ids.sleep)).status === 'cancelled');
  assert.ok(dialogs.some((d) => d.type === 'confirm' && d.message.includes(ids.sleep)));
  ok.cancelled = ids.sleep;

  // A dead letter is retried from the DLQ screen: it runs (and fails) again.
  await go('#/dlq');
  await page.waitForSelector(`#dlq-table tr[data-id="${ids.dead}"]`, {timeout: WAIT});
  await shot('dlq');
  await click(`#dlq-table tr[data-id="${ids.dead}"]`, 'retry');
  await poll('the dead letter retried', async () => ((await job(ids.dead)).history || []).length >= 2);
  ok.retried = ids.dead;

  // A queue is paused, then given a concurrency, from the Queues screen.
  await go('#/queues');
  await page.waitForSelector('#queues-table tr[data-queue="dash-idle"]', {timeout: WAIT});
  await click('#queues-table tr[data-queue="dash-idle"]', 'pause');
  await poll('queue paused', async () => (await api('GET', '/v1/queues/dash-idle')).data.paused === true);
  promptAnswer = '7';
  await click('#queues-table tr[data-queue="dash-idle"]', 'concurrency');
  await poll('queue concurrency', async () => (await api('GET', '/v1/queues/dash-idle')).data.concurrency === 7);
  await page.waitForFunction(() => {
    const tr = document.querySelector('#queues-table tr[data-queue="dash-idle"]');
    return tr && tr.children[1].textContent === 'paused' && tr.children[2].textContent === '7' &&
      tr.querySelector('button[data-act="resume"]');
  }, {timeout: WAIT});
  await shot('queues');
  ok.paused = 'dash-idle';

  await scheduleAndDag();
  await purge();

  // Workers and cluster screens.
  await go('#/workers');
  await page.waitForFunction((n) => {
    const tr = document.querySelector(`#workers-table tr[data-worker="${n}"]`);
    return tr && tr.textContent.includes('alive');
  }, {timeout: WAIT}, cfg.worker);
  await shot('workers');
  await go('#/cluster');
  await page.waitForFunction(() => document.querySelectorAll('#cluster-info tr[data-node]').length === 3 &&
    document.querySelector('#cluster-info').textContent.includes('insecure') &&
    document.querySelector('#cluster-info').textContent.includes('leader'), {timeout: WAIT});
  await shot('cluster');

  await hostile();
  await liveList();
  await refused();
}

// The indicator's text: "live" while the page follows /v1/events.
async function waitMode(pg, mode) {
  await pg.waitForFunction((m) => document.getElementById('live').textContent === m,
    {timeout: WAIT}, mode);
}

// With polling slowed to a minute (?poll=60000), a job submitted through
// the API appears in the list and turns completed without a reload: only
// the event stream can show that within WAIT.
async function liveList() {
  await page.goto(cfg.base + '/?poll=60000#/jobs', {waitUntil: 'load'});
  await waitMode(page, 'live');
  await page.waitForSelector('#jobs-table tbody tr', {timeout: WAIT});
  const j = (await api('POST', '/v1/jobs', {type: 'sleep', name: 'dash-live', payload: {ms: 1500}})).data;
  await page.waitForSelector(`#jobs-table tr[data-id="${j.id}"]`, {timeout: WAIT});
  await page.waitForSelector(`#jobs-table tr[data-id="${j.id}"] .status-completed`, {timeout: WAIT});
  assert.equal((await job(j.id)).status, 'completed');
  await waitMode(page, 'live');
  await shot('live');
  ok.live = j.id;
}

// A node that refuses the stream (404, as one without /v1/events): the page
// says "polling" and still shows a new job and its end, by polling.
async function refused() {
  const p2 = await browser.newPage();
  p2.on('pageerror', (e) => pageErrors.push(String(e)));
  let asked = 0;
  await p2.setRequestInterception(true);
  p2.on('request', (r) => {
    if (new URL(r.url()).pathname === '/v1/events') {
      asked++;
      r.respond({status: 404, contentType: 'application/json',
        body: '{"error":{"code":"not_found","field":null,"message":"no such route"}}'});
    } else {
      r.continue();
    }
  });
  await p2.goto(cfg.base + '/#/jobs', {waitUntil: 'load'});
  await poll('the page asking for /v1/events', async () => asked > 0);
  await p2.waitForSelector('#jobs-table tbody tr', {timeout: WAIT});
  const j = (await api('POST', '/v1/jobs', {type: 'sleep', name: 'dash-poll', payload: {ms: 1500}})).data;
  await p2.waitForSelector(`#jobs-table tr[data-id="${j.id}"]`, {timeout: WAIT});
  await p2.waitForSelector(`#jobs-table tr[data-id="${j.id}"] .status-completed`, {timeout: WAIT});
  assert.equal(await p2.$eval('#live', (e) => e.textContent), 'polling');
  await p2.close();
  ok.refused = j.id;
}

// A schedule is paused, resumed and run now from its page, which lists the
// run; a workflow job's page links its parent and its child.
async function scheduleAndDag() {
  const ids = cfg.ids;
  await go(`#/jobs/${ids.schedule}`);
  await page.waitForFunction((id) => {
    const t = document.querySelector('#view-job:not([hidden]) .job-title');
    return t && t.textContent.includes(id);
  }, {timeout: WAIT}, ids.schedule);
  await click('#job-detail', 'pause');
  await poll('schedule paused', async () => (await job(ids.schedule)).paused === true);
  await click('#job-detail', 'resume');
  await poll('schedule resumed', async () => (await job(ids.schedule)).paused === false);
  await click('#job-detail', 'trigger');
  const run = await poll('a run recorded', async () => {
    const r = await api('GET', `/v1/jobs/${ids.schedule}/runs`);
    return r.data.runs.length > 0 && r.data.runs[0].job_id;
  });
  await page.waitForFunction((rid) => [...document.querySelectorAll('#job-detail a.job-link')]
    .some((a) => a.textContent === rid), {timeout: WAIT}, run);
  await shot('schedule');
  ok.schedule = ids.schedule;

  await go(`#/jobs/${ids.wf_first}`);
  await page.waitForFunction((child) => {
    const c = document.querySelector('#job-detail .children');
    return c && c.textContent.includes(child);
  }, {timeout: WAIT}, ids.wf_second);
  await go(`#/jobs/${ids.wf_second}`);
  await page.waitForFunction((parent) => {
    const c = document.querySelector('#job-detail .parents');
    return c && c.textContent.includes(parent);
  }, {timeout: WAIT}, ids.wf_first);
  ok.dag = true;
}

// The dead letters of one queue are purged in bulk.
async function purge() {
  const ids = cfg.ids;
  await go('#/dlq');
  await page.type('#dlq-filters input[name=queue]', 'dash-purge');
  await page.$eval('#dlq-filters input[name=queue]', (e) => e.dispatchEvent(new Event('change', {bubbles: true})));
  await page.waitForFunction((a, b) => {
    const rows = [...document.querySelectorAll('#dlq-table tbody tr')].map((r) => r.dataset.id);
    return rows.length === 2 && rows.includes(a) && rows.includes(b);
  }, {timeout: WAIT}, ids.purge[0], ids.purge[1]);
  await clickSel('#dlq-purge');
  for (const id of ids.purge) {
    await poll(`dead letter ${id} purged`, async () => (await api('GET', `/v1/jobs/${id}`)).status === 404);
  }
  assert.ok(dialogs.some((d) => d.type === 'confirm' && d.message.includes('queue dash-purge')));
  await page.waitForFunction(() => document.querySelector('#notice').textContent.includes('2 dead letters deleted'),
    {timeout: WAIT});
  ok.purged = ids.purge;
}

// A job whose name and payload hold markup is shown as text: no element is
// made from it, no script runs, no dialog opens.
async function hostile() {
  const name = '<img src=x onerror="window.__xss=1;alert(1)">';
  const payload = {html: '<script>window.__xss=2;alert(2)</script>', img: '<img src=x onerror=alert(3)>'};
  const j = (await api('POST', '/v1/jobs', {type: 'noop', name, payload, queue: 'dash-idle'})).data;
  const before = dialogs.length;
  await go('#/jobs');
  await page.waitForSelector(`#jobs-table tr[data-id="${j.id}"]`, {timeout: WAIT});
  const rowText = await page.$eval(`#jobs-table tr[data-id="${j.id}"]`, (tr) => tr.textContent);
  assert.ok(rowText.includes(name), 'the name is shown as text');
  await go(`#/jobs/${j.id}`);
  await page.waitForFunction(() => document.querySelector('#job-detail pre.payload'), {timeout: WAIT});
  const payloadText = await page.$eval('#job-detail pre.payload', (p) => p.textContent);
  assert.ok(payloadText.includes('<script>window.__xss=2'), 'the payload is shown as text');
  assert.ok(payloadText.includes('<img src=x onerror=alert(3)>'));
  const counts = await page.evaluate(() => ({
    img: document.querySelectorAll('img').length,
    script: document.querySelectorAll('script').length,
    xss: window.__xss === undefined ? null : window.__xss,
  }));
  assert.deepEqual(counts, {img: 0, script: 1, xss: null});
  assert.equal(dialogs.length, before, 'no dialog opened');
  assert.ok(!dialogs.some((d) => d.type === 'alert'), 'no alert ever');
  ok.hostile = j.id;
}

async function signIn(secret) {
  await page.waitForSelector('#signin:not([hidden]) #token', {timeout: WAIT});
  await page.type('#token', secret);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#signed-in:not([hidden])', {timeout: WAIT});
}

async function secure() {
  const ids = cfg.ids;
  await page.goto(cfg.base + '/', {waitUntil: 'load'});
  // No token: the API answers 401 and the page asks for one.
  await page.waitForFunction(() => {
    const b = document.getElementById('banner');
    return !b.hidden && b.textContent.includes('sign in');
  }, {timeout: WAIT});
  await shot('signin');
  // A read token sees the jobs; its cancel is refused (403): read-only.
  assert.equal(await page.$eval('#live', (e) => e.textContent), 'polling', 'no stream without a token');
  await signIn(cfg.tokens.read);
  await page.waitForSelector(`#jobs-table tr[data-id="${ids.idle}"]`, {timeout: WAIT});
  await waitMode(page, 'live'); // The stream opens with the token (fetch, Authorization).
  ok.live = true;
  assert.ok(await page.$eval('#banner', (b) => b.hidden), 'no error banner once signed in');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('rotaToken')), cfg.tokens.read);
  await click(`#jobs-table tr[data-id="${ids.idle}"]`, 'cancel');
  await page.waitForSelector('#readonly:not([hidden])', {timeout: WAIT});
  assert.equal(await visibleActions(), 0, 'actions hidden for a read-only token');
  assert.equal((await job(ids.idle)).status, 'pending');
  ok.readonly = true;
  // Sign out: the token is gone and the page asks again.
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])', {timeout: WAIT});
  assert.equal(await page.evaluate(() => sessionStorage.getItem('rotaToken')), null);
  // An admin token may act: the cancel goes through.
  await signIn(cfg.tokens.admin);
  assert.ok(await page.$eval('#readonly', (b) => b.hidden));
  await click(`#jobs-table tr[data-id="${ids.idle}"]`, 'cancel');
  await poll('the job cancelled', async () => (await job(ids.idle)).status === 'cancelled');
  ok.cancelled = ids.idle;
  await go('#/cluster');
  await page.waitForFunction(() => document.querySelector('#cluster-info').textContent.includes('secure (TLS'),
    {timeout: WAIT});
}

try {
  if (cfg.scenario === 'secure') await secure();
  else await insecure();
  assert.deepEqual(pageErrors, [], 'no script error on the page');
  console.log(JSON.stringify({ok: true, ...ok, dialogs: dialogs.length}));
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e && e.stack ? e.stack : String(e));
  console.error('page errors: ' + JSON.stringify(pageErrors));
  process.exitCode = 1;
} finally {
  await browser.close();
}
