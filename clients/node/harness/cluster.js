'use strict';
/* A real Rota cluster for the tests: N rotad processes on loopback, started
 * from ROTA_BUILD_DIR the way tests/integration/conftest.py does (fresh
 * free ports, --insecure, one temporary directory, a leader every alive
 * node agrees on). Processes are stopped by PID; a node stopped by SIGTERM
 * must exit 0; the directory is removed unless something went wrong (then
 * it is kept and the logs' tails are printed). Every wait polls to a
 * deadline. Not a test file: node --test only runs files under test/. */

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const BUILD = process.env.ROTA_BUILD_DIR || path.join(__dirname, '..', '..', '..', 'build');
const ROTAD = path.join(BUILD, 'rotad');

const handedOut = new Set();
const live = new Set(); /* Every child still running: killed on exit. */
process.on('exit', () => {
  for (const p of live) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* Already gone. */
    }
  }
});

/* A free loopback port never handed out before in this process. */
async function freePort() {
  for (let i = 0; i < 100; i++) {
    const port = await new Promise((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no fresh free port');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Polls @cond until it returns a truthy value (returned) or @timeout ms. */
async function waitUntil(cond, { timeout = 15000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await cond();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

/* One HTTP request: {status, body (parsed JSON or text)}. */
async function req(addr, method, p, body) {
  const res = await fetch(`http://${addr}${p}`, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* Text. */
  }
  return { status: res.status, body: parsed };
}

/* Whether @node serves GET /v1/events (and with it GET /v1/jobs/{id}?wait=):
 * the status of its answer's head, then the stream is dropped. */
async function hasEvents(node) {
  const ctrl = new AbortController();
  const t = setTimeout(() => ctrl.abort(), 5000);
  try {
    const res = await fetch(`${node.url}/v1/events`, { signal: ctrl.signal });
    return res.status === 200;
  } finally {
    clearTimeout(t);
    ctrl.abort();
  }
}

class Node {
  constructor(cluster, id, raft, http) {
    this.cluster = cluster;
    this.id = id;
    this.raft = raft;
    this.http = http;
    this.url = `http://${http}`;
    this.dir = path.join(cluster.dir, `n${id}`);
    this.log = path.join(cluster.dir, `n${id}.log`);
    this.proc = null;
    this.exited = null; /* Promise of {code, signal}. */
    this.killed = false;
  }

  start(extra) {
    const fd = fs.openSync(this.log, 'a');
    const args = ['--id', String(this.id), '--data-dir', this.dir, '--raft-addr', this.raft,
      '--http-addr', this.http, '--insecure', ...extra];
    const p = spawn(ROTAD, args, { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.proc = p;
    this.killed = false;
    live.add(p);
    this.exited = new Promise((resolve) => p.once('exit', (code, signal) => {
      live.delete(p);
      resolve({ code, signal });
    }));
  }

  alive() {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /* Signals the process (by PID) and waits for it to end. */
  async kill(sig = 'SIGKILL') {
    if (!this.alive()) return;
    this.killed = sig === 'SIGKILL';
    this.proc.kill(sig);
    let timer;
    const r = await Promise.race([this.exited, new Promise((res) => (timer = setTimeout(res, 10000, null)))]);
    clearTimeout(timer);
    if (r === null) {
      this.cluster.problems.push(`node ${this.id} pid ${this.proc.pid}: no exit 10 s after ${sig}`);
      this.killed = true;
      this.proc.kill('SIGKILL');
      await this.exited;
    } else if (!this.killed && r.code !== 0) {
      this.cluster.problems.push(`node ${this.id} pid ${this.proc.pid} exited ${r.code} (${r.signal})`);
    }
  }

  req(method, p, body) {
    return req(this.http, method, p, body);
  }

  logTail(n = 25) {
    try {
      return fs.readFileSync(this.log, 'utf8').split('\n').slice(-n).join('\n');
    } catch {
      return '';
    }
  }
}

class Cluster {
  static async start(n = 3) {
    if (!fs.existsSync(ROTAD)) throw new Error(`${ROTAD} is not built (set ROTA_BUILD_DIR)`);
    const c = new Cluster();
    c.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rota-ts-'));
    c.problems = [];
    c.nodes = [];
    for (let i = 1; i <= n; i++) {
      c.nodes.push(new Node(c, i, `127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`));
    }
    c.flags = ['--election-timeout', '500', '--heartbeat-timeout', '50'];
    c.spec = c.nodes.map((x) => `${x.id}@${x.raft}`).join(',');
    for (const x of c.nodes) x.start(['--cluster', c.spec, ...c.flags]);
    await c.leader(20000);
    return c;
  }

  get urls() {
    return this.nodes.map((n) => n.url);
  }

  alive() {
    return this.nodes.filter((n) => n.alive());
  }

  /* Starts a stopped node again, with its data. */
  restart(node) {
    node.start(['--cluster', this.spec, ...this.flags]);
  }

  /* The leader every alive node agrees on, with every alive node ready. */
  leader(timeout = 20000) {
    return waitUntil(async () => {
      const leaders = new Set();
      for (const n of this.alive()) {
        const v = await n.req('GET', '/v1/cluster');
        if (v.status !== 200 || !v.body.leader || !v.body.leader.http_addr) return null;
        leaders.add(v.body.leader.id);
      }
      const ids = new Set(this.alive().map((n) => n.id));
      if (leaders.size !== 1 || !ids.has([...leaders][0])) return null;
      for (const n of this.alive()) {
        if ((await n.req('GET', '/readyz')).status !== 200) return null;
      }
      return this.nodes.find((n) => n.id === [...leaders][0]);
    }, { timeout, what: 'an agreed leader' });
  }

  async followers() {
    const lead = await this.leader();
    return this.alive().filter((n) => n !== lead);
  }

  /* The job as the leader sees it after a barrier. */
  async job(id) {
    const lead = await this.leader();
    return (await lead.req('GET', `/v1/jobs/${id}?consistency=linearizable`)).body;
  }

  /* SIGTERM every node, then remove the directory unless @keep or a node
   * ended badly (then print the logs and throw). */
  async stop(keep = false) {
    for (const n of this.nodes) await n.kill('SIGTERM');
    if (keep || this.problems.length > 0) {
      for (const n of this.nodes) console.log(`----- node ${n.id} (${n.http}) -----\n${n.logTail()}`);
      console.log(`data and logs kept in ${this.dir}`);
    } else {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
    if (this.problems.length > 0) throw new Error(this.problems.join('\n'));
  }
}

module.exports = { Cluster, waitUntil, sleep, req, hasEvents };
