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
const { execFileSync } = require('node:child_process');
const { Agent, request } = require('undici');

const BUILD = process.env.ROTA_BUILD_DIR || path.join(__dirname, '..', '..', '..', 'build');
const ROTAD = path.join(BUILD, 'rotad');
const ROTACTL = path.join(BUILD, 'ctl', 'rotactl');

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

/* One HTTP request to @url: {status, body (parsed JSON or text)}. With
 * @tls ({agent, token}): HTTPS verified against the cluster CA, with the
 * token. */
async function req(url, method, p, body, tls) {
  const headers = body !== undefined ? { 'content-type': 'application/json' } : {};
  if (tls && tls.token) headers.authorization = `Bearer ${tls.token}`;
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error(`${method} ${url}${p}: no answer in 10 s`)), 10000);
  let res, text;
  try {
    res = await request(url + p, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: ctrl.signal,
      dispatcher: tls ? tls.agent : undefined,
    });
    text = await res.body.text();
  } finally {
    clearTimeout(timer);
  }
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* Text. */
  }
  return { status: res.statusCode, body: parsed };
}

class Node {
  constructor(cluster, id, raft, http) {
    this.cluster = cluster;
    this.id = id;
    this.raft = raft;
    this.http = http;
    this.url = `${cluster.ca ? 'https' : 'http'}://${http}`;
    this.dir = path.join(cluster.dir, `n${id}`);
    this.log = path.join(cluster.dir, `n${id}.log`);
    this.proc = null;
    this.exited = null; /* Promise of {code, signal}. */
    this.killed = false;
  }

  start(extra) {
    const fd = fs.openSync(this.log, 'a');
    const args = ['--id', String(this.id), '--data-dir', this.dir, '--raft-addr', this.raft,
      '--http-addr', this.http, ...extra];
    if (!extra.includes('--certs-dir')) args.push('--insecure'); /* Said out loud. */
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

  /* Sends @sig (e.g. SIGSTOP, SIGCONT) to the process, by PID. */
  signal(sig) {
    if (this.alive()) this.proc.kill(sig);
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
    const c = this.cluster;
    return req(this.url, method, p, body, c.ca ? { agent: c.agent, token: c.token } : undefined);
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
  /* @secure: certificates made by rotactl cert, HTTPS and access control
   * on (an admin token bootstrapped: cluster.token), as conftest.py does
   * with --certs-dir. */
  static async start(n = 3, { secure = false } = {}) {
    if (!fs.existsSync(ROTAD)) throw new Error(`${ROTAD} is not built (set ROTA_BUILD_DIR)`);
    const c = new Cluster();
    c.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rota-ts-'));
    c.problems = [];
    c.nodes = [];
    c.ca = null;
    c.token = null;
    const tls = [];
    if (secure) {
      const certs = path.join(c.dir, 'certs');
      for (const args of [['create-ca'], ['create-node', '127.0.0.1', 'localhost']]) {
        execFileSync(ROTACTL, ['cert', args[0], '--certs-dir', certs, ...args.slice(1)], { stdio: 'pipe', timeout: 30000 });
      }
      c.ca = path.join(certs, 'ca.crt');
      c.agent = new Agent({ connect: { ca: fs.readFileSync(c.ca), maxCachedSessions: 0 } }); /* See src/transport.ts. */
      tls.push('--certs-dir', certs);
    }
    for (let i = 1; i <= n; i++) {
      c.nodes.push(new Node(c, i, `127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`));
    }
    c.flags = ['--election-timeout', '500', '--heartbeat-timeout', '50', ...tls];
    c.spec = c.nodes.map((x) => `${x.id}@${x.raft}`).join(',');
    for (const x of c.nodes) x.start(['--cluster', c.spec, ...c.flags]);
    await c.leader(20000);
    if (secure) {
      const lead = await c.leader();
      const r = await lead.req('POST', '/v1/acl/bootstrap', {});
      if (r.status !== 201) throw new Error(`bootstrap: ${r.status} ${JSON.stringify(r.body)}`);
      c.token = r.body.secret;
      await c.tokenKnown(c.token);
    }
    return c;
  }

  /* Until every alive node knows the token (followers apply it a
   * heartbeat after the leader). */
  async tokenKnown(secret) {
    for (const n of this.alive()) {
      await waitUntil(async () => (await req(n.url, 'GET', '/v1/jobs?limit=1', undefined,
        { agent: this.agent, token: secret })).status !== 401, { what: `token known on node ${n.id}` });
    }
  }

  /* A new token's secret (secure mode), known on every node. */
  async makeToken(role, limits = {}) {
    const lead = await this.leader();
    const r = await lead.req('POST', '/v1/acl/tokens', { name: `t-${role}-${Date.now()}`, role, ...limits });
    if (r.status !== 201) throw new Error(`token: ${r.status} ${JSON.stringify(r.body)}`);
    await this.tokenKnown(r.body.secret);
    return r.body.secret;
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
    if (this.agent) await this.agent.close();
    if (this.problems.length > 0) throw new Error(this.problems.join('\n'));
  }
}

module.exports = { Cluster, waitUntil, sleep, req };
