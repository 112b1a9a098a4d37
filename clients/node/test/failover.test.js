'use strict';
/* Destructive: the leader is SIGKILLed while a client submits. Every
 * submit must resolve (the client retries with the same idempotency keys
 * on the new leader) and the cluster must hold each job exactly once. */

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { Client } = require('..');
const { Cluster, waitUntil } = require('../harness/cluster');

let cluster;
let failed = false;

function test(name, fn) {
  it(name, { timeout: 60000 }, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

describe('failover', () => {
  before(async () => {
    cluster = await Cluster.start(3);
  });
  after(async () => {
    await cluster.stop(failed);
  });

  test('events() reconnects with Last-Event-ID when its node dies: nothing missed, nothing twice', async () => {
    const [f, g] = await cluster.followers();
    const lead = await cluster.leader();
    const q = `ts-events-${process.pid}`;
    /* The stream starts on follower f (the first server). */
    const reader = new Client({ servers: [f.url, g.url, lead.url] });
    const writer = new Client({ servers: [lead.url, g.url] });
    const ctrl = new AbortController();
    const got = [];
    const reading = (async () => {
      for await (const ev of reader.events({ queue: q, events: 'job.created' }, { signal: ctrl.signal })) got.push(ev);
    })();
    const created = [];
    const createdIds = () => got.filter((e) => e.event === 'job.created').map((e) => e.job.id);
    try {
      await waitUntil(async () => {
        created.push((await writer.submit('noop', {}, { queue: q })).id);
        return createdIds().length > 0;
      }, { interval: 200, what: 'the stream connected' });
      /* The markers submitted before the stream was connected are not
       * streamed; from the first one seen on, every one is. */
      const first = created.indexOf(createdIds()[0]);
      assert.ok(first >= 0);
      /* Ten jobs at once (one batch) right after the kill: created while
       * the reader is between connections (it backs off ~100 ms). */
      await f.kill('SIGKILL');
      const during = await Promise.all(Array.from({ length: 10 }, (_, i) => writer.submit('noop', { i }, { queue: q })));
      created.push(...during.map((j) => j.id));
      const last = created[created.length - 1];
      await waitUntil(() => createdIds().includes(last), { what: 'the last job.created, after the reconnect' });
      assert.deepEqual(createdIds(), created.slice(first), 'each event once, in order');
    } finally {
      ctrl.abort();
      await reading;
      await reader.close();
      await writer.close();
      if (!f.alive()) cluster.restart(f); /* The next test needs three. */
      await cluster.leader();
    }
  });

  test('a worker process drains on SIGTERM: its job completes, it deregisters, exits 0', async () => {
    const q = `ts-sigterm-${process.pid}`;
    const name = `w-${q}`;
    const client = new Client({ servers: cluster.urls });
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'harness', 'worker-main.js')], {
      env: { ...process.env, ROTA_SERVERS: cluster.urls.join(','), ROTA_QUEUE: q, ROTA_NAME: name },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
    try {
      const job = await client.submit('ts.slow', {}, { queue: q });
      await waitUntil(async () => (await cluster.job(job.id)).status === 'running', { what: 'job running' });
      child.kill('SIGTERM');
      const end = await exited;
      assert.deepEqual(end, { code: 0, sig: null });
      const fin = await cluster.job(job.id);
      assert.equal(fin.status, 'completed');
      assert.equal(fin.result, 'done');
      const lead = await cluster.leader();
      const mine = (await lead.req('GET', '/v1/workers')).body.workers.filter((w) => w.name === name);
      assert.ok(mine.every((w) => w.state === 'down'), JSON.stringify(mine));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await client.close();
    }
  });

  test('leader frozen, then killed, while submitting: every submit resolves, each job exists once', async () => {
    /* SIGSTOP first: requests the leader took stay unanswered while the
     * followers elect a new leader that commits what they already hold, so
     * retried submits whose first try did create the job are certain (a
     * client without idempotency keys makes duplicates here). Sixteen
     * submits in flight at any time: eight loops on an auto-batching
     * client, eight on one without batching. */
    const batching = new Client({ servers: cluster.urls, timeoutMs: 2000 });
    const single = new Client({ servers: cluster.urls, timeoutMs: 2000, batchLingerMs: 0 });
    const q = `ts-failover-${process.pid}`;
    const old = await cluster.leader();
    const total = 320;
    let issued = 0;
    let resolved = 0;
    const submitted = [];
    const loop = async (client) => {
      while (issued < total) {
        const n = issued++;
        submitted.push(await client.submit('noop', { n }, { queue: q }));
        resolved++;
      }
    };
    try {
      const loops = [];
      for (let k = 0; k < 8; k++) loops.push(loop(batching), loop(single));
      await waitUntil(() => resolved >= 60, { what: 'submits before the freeze' });
      old.signal('SIGSTOP');
      const frozenAt = resolved;
      await Promise.all(loops);
      assert.ok(frozenAt < total, 'the freeze came while submitting');
      await old.kill('SIGKILL');
      const lead = await cluster.leader();
      assert.notEqual(lead.id, old.id);

      assert.equal(submitted.length, total);
      const ids = new Set(submitted.map((j) => j.id));
      assert.equal(ids.size, total, 'one job per submit');
      assert.deepEqual(new Set(submitted.map((j) => j.payload.n)).size, total);

      /* The new leader holds exactly these jobs. */
      const fresh = new Client({ servers: [lead.url], batchLingerMs: 0 });
      try {
        await fresh.get(submitted[submitted.length - 1].id, { consistency: 'linearizable' });
        const listed = [];
        for await (const j of fresh.list({ queue: q, limit: 1000 })) listed.push(j);
        const counts = new Map();
        for (const j of listed) counts.set(j.payload.n, (counts.get(j.payload.n) || 0) + 1);
        const twice = [...counts].filter(([, c]) => c > 1).map(([n]) => n);
        assert.deepEqual(twice, [], 'no submit created two jobs');
        assert.equal(listed.length, total, 'no duplicate and no loss');
        assert.deepEqual(new Set(listed.map((j) => j.id)), ids);
      } finally {
        await fresh.close();
      }
    } finally {
      old.signal('SIGCONT');
      await batching.close();
      await single.close();
    }
  });
});
