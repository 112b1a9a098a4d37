'use strict';
/* The client and the TypeScript worker against one real 3-node cluster
 * (harness/cluster.js). Each test uses its own queue, so tests do not see
 * each other's jobs or workers. */

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Client, Worker, RotaError, Permanent } = require('..');
const { Cluster, waitUntil } = require('../harness/cluster');

let cluster;
let client;
let failed = false;
let seq = 0;
const queue = (what) => `ts-${what}-${process.pid}-${++seq}`;

/* it(), remembering a failure so the cluster's logs are kept and shown. */
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

async function status(id, want, timeout = 20000) {
  return waitUntil(async () => {
    const j = await cluster.job(id);
    return j.status === want ? j : null;
  }, { timeout, what: `job ${id} ${want}` });
}

/* A worker on its own queue, running until the test stops it. */
function startWorker(q, handlers, opts = {}) {
  const w = new Worker(client, { queues: [q], concurrency: 4, name: `w-${q}`, leaseWaitMs: 500, ...opts });
  for (const [type, fn] of Object.entries(handlers)) w.handle(type, fn);
  const done = w.run();
  return { w, done };
}

describe('client against a 3-node cluster', () => {
  before(async () => {
    cluster = await Cluster.start(3);
    client = new Client({ servers: cluster.urls });
  });
  after(async () => {
    await client.close();
    await cluster.stop(failed);
  });

  test('submit creates a job; the same idempotency key gives the same job', async () => {
    const q = queue('submit');
    const job = await client.submit('noop', { n: 1 }, { queue: q, priority: 5, idempotency_key: `k-${q}` });
    assert.match(job.id, /^[0-9a-f]{16}$/);
    assert.equal(job.type, 'noop');
    assert.deepEqual(job.payload, { n: 1 });
    assert.equal(job.queue, q);
    assert.equal(job.priority, 5);
    assert.equal(job.status, 'pending');
    const again = await client.submit('noop', { n: 1 }, { queue: q, priority: 5, idempotency_key: `k-${q}` });
    assert.equal(again.id, job.id);
    const other = await client.submit('noop', { n: 1 }, { queue: q });
    assert.notEqual(other.id, job.id);
    assert.match(other.idempotency_key, /^rota-/);
  });

  test('submit of an invalid job rejects with a RotaError naming the field', async () => {
    await assert.rejects(client.submit('noop', {}, { queue: queue('bad'), priority: 'high' }), (e) => {
      assert.ok(e instanceof RotaError);
      assert.equal(e.status, 400);
      assert.equal(e.code, 'invalid_argument');
      assert.equal(e.field, 'priority');
      return true;
    });
  });

  test('get answers the job (read-your-writes on any node), 404 for an unknown id', async () => {
    const q = queue('get');
    const job = await client.submit('noop', { x: 'y' }, { queue: q });
    for (let i = 0; i < 3; i++) { /* Reads rotate over the three nodes. */
      const got = await client.get(job.id);
      assert.equal(got.id, job.id);
      assert.deepEqual(got.payload, { x: 'y' });
    }
    await assert.rejects(client.get('00000000000000ff'), (e) => e instanceof RotaError && e.status === 404 && e.code === 'not_found');
  });

  test('submitMany: one bad item fails alone, the others are created', async () => {
    const q = queue('many');
    const res = await client.submitMany([
      { type: 'noop', queue: q, payload: { i: 0 } },
      { type: 'noop', queue: q, payload: { i: 1 }, max_attempts: 0 },
      { type: 'noop', queue: q, payload: { i: 2 } },
    ]);
    assert.equal(res.length, 3);
    assert.equal(res[0].ok, true);
    assert.equal(res[0].status, 201);
    assert.deepEqual(res[0].job.payload, { i: 0 });
    assert.equal(res[1].ok, false);
    assert.equal(res[1].status, 400);
    assert.ok(res[1].error instanceof RotaError);
    assert.equal(res[1].error.code, 'invalid_argument');
    assert.equal(res[1].error.field, 'max_attempts');
    assert.equal(res[2].ok, true);
    assert.deepEqual(res[2].job.payload, { i: 2 });
    const listed = [];
    for await (const j of client.list({ queue: q })) listed.push(j.id);
    assert.deepEqual(listed.sort(), [res[0].job.id, res[2].job.id].sort());
  });

  test('list yields every page', async () => {
    const q = queue('list');
    const res = await client.submitMany(Array.from({ length: 23 }, (_, i) => ({ type: 'noop', queue: q, payload: { i } })));
    assert.ok(res.every((r) => r.ok));
    const before = client.requests;
    const ids = [];
    for await (const j of client.list({ queue: q, limit: 5 })) ids.push(j.id);
    assert.equal(ids.length, 23);
    assert.deepEqual(new Set(ids), new Set(res.map((r) => r.job.id)));
    assert.ok(client.requests - before >= 5, 'five pages of at most 5');
  });

  test('cancel cancels a pending job; cancelling it again answers it', async () => {
    const q = queue('cancel');
    const job = await client.submit('noop', {}, { queue: q });
    const c = await client.cancel(job.id);
    assert.equal(c.status, 'cancelled');
    assert.equal((await cluster.job(job.id)).status, 'cancelled');
    assert.equal((await client.cancel(job.id)).status, 'cancelled');
    await assert.rejects(client.cancel('00000000000000ff'), (e) => e.status === 404);
  });

  test('auto-batching: concurrent submits go in fewer requests, each gets its own job or error', async () => {
    const q = queue('batch');
    const n = 60;
    const before = client.requests;
    const all = await Promise.allSettled(Array.from({ length: n }, (_, i) =>
      client.submit('noop', { i }, i === 7 ? { queue: q, priority: 'bad' } : { queue: q })));
    const used = client.requests - before;
    assert.ok(used < n / 4, `${used} requests for ${n} submits`);
    assert.equal(all[7].status, 'rejected');
    assert.equal(all[7].reason.field, 'priority');
    const ok = all.filter((r, i) => i !== 7);
    assert.ok(ok.every((r) => r.status === 'fulfilled'));
    ok.forEach((r, k) => assert.deepEqual(r.value.payload, { i: k < 7 ? k : k + 1 }));
    assert.equal(new Set(ok.map((r) => r.value.id)).size, n - 1);

    /* The same without batching: one request per submit. */
    const single = new Client({ servers: cluster.urls, batchLingerMs: 0 });
    try {
      const b2 = single.requests;
      await Promise.all(Array.from({ length: 10 }, (_, i) => single.submit('noop', { i }, { queue: q })));
      assert.ok(single.requests - b2 >= 10);
    } finally {
      await single.close();
    }
  });

  test('a TS worker runs jobs and their results are recorded', async () => {
    const q = queue('work');
    const { w, done } = startWorker(q, { 'ts.add': async (job) => ({ sum: job.payload.a + job.payload.b, attempt: job.attempt }) });
    try {
      const jobs = await Promise.all(Array.from({ length: 8 }, (_, i) => client.submit('ts.add', { a: i, b: 10 }, { queue: q })));
      for (const [i, j] of jobs.entries()) {
        const fin = await status(j.id, 'completed');
        assert.equal(fin.result.sum, i + 10);
        assert.equal(fin.attempts, 1);
      }
    } finally {
      w.stop();
      await done;
    }
  });

  test('a handler that throws is retried, then succeeds', async () => {
    const q = queue('retry');
    const calls = new Map();
    const { w, done } = startWorker(q, {
      'ts.flaky': async (job) => {
        const n = (calls.get(job.id) || 0) + 1;
        calls.set(job.id, n);
        if (n === 1) throw new Error('first try fails');
        return { ok: n };
      },
    });
    try {
      const job = await client.submit('ts.flaky', {}, { queue: q, max_attempts: 3, backoff: { initial: '100ms' } });
      const fin = await status(job.id, 'completed');
      assert.equal(fin.attempts, 2);
      assert.deepEqual(fin.result, { ok: 2 });
      assert.equal(fin.history[0].outcome, 'failed');
      assert.match(fin.history[0].error, /first try fails/);
    } finally {
      w.stop();
      await done;
    }
  });

  test('Permanent fails the job at once (dead letter), without retries', async () => {
    const q = queue('perm');
    let calls = 0;
    const { w, done } = startWorker(q, {
      'ts.perm': async () => {
        calls++;
        throw new Permanent('bad input');
      },
    });
    try {
      const job = await client.submit('ts.perm', {}, { queue: q, max_attempts: 5, backoff: { initial: '100ms' } });
      const fin = await status(job.id, 'failed');
      assert.equal(fin.attempts, 1);
      assert.match(fin.last_error, /bad input/);
      assert.equal(calls, 1);
      /* In the dead-letter list (of a node that may trail the leader by
       * a heartbeat: the worker's result was not this client's write). */
      await waitUntil(async () => {
        const dead = [];
        for await (const j of client.list({ status: 'failed', queue: q })) dead.push(j.id);
        assert.ok(dead.length <= 1);
        return dead.length === 1 && dead[0] === job.id;
      }, { what: 'the job in the failed list' });
    } finally {
      w.stop();
      await done;
    }
  });

  test('cancelling a running job aborts its signal', async () => {
    const q = queue('abort');
    let started = null;
    let aborted = false;
    const { w, done } = startWorker(q, {
      'ts.long': (job) => new Promise((resolve, reject) => {
        started = job.id;
        job.signal.addEventListener('abort', () => {
          aborted = true;
          reject(new Error('aborted'));
        });
      }),
    });
    try {
      const job = await client.submit('ts.long', {}, { queue: q });
      await status(job.id, 'running');
      await waitUntil(() => started === job.id, { what: 'handler started' });
      assert.equal((await client.cancel(job.id)).status, 'cancelled');
      await waitUntil(() => aborted, { what: 'the job signal aborted' });
      assert.equal((await cluster.job(job.id)).status, 'cancelled');
    } finally {
      w.stop();
      await done;
    }
  });

  test('stop() drains: the running job finishes and is delivered, the worker deregisters', async () => {
    const q = queue('drain');
    let release;
    const gate = new Promise((r) => (release = r));
    let started = false;
    const { w, done } = startWorker(q, {
      'ts.gated': async () => {
        started = true;
        await gate;
        return 'finished';
      },
    });
    const job = await client.submit('ts.gated', {}, { queue: q });
    await waitUntil(() => started, { what: 'handler started' });
    w.stop();
    release();
    await done;
    const fin = await cluster.job(job.id);
    assert.equal(fin.status, 'completed');
    assert.equal(fin.result, 'finished');
    const lead = await cluster.leader();
    const workers = (await lead.req('GET', '/v1/workers')).body.workers;
    /* Deregistered: gone from the list (or at least not alive). */
    const mine = workers.filter((x) => x.id === w.id || x.name === `w-${q}`);
    assert.ok(w.id !== '');
    assert.ok(mine.every((x) => x.state === 'down'), JSON.stringify(mine));
  });

  test('wait() resolves when the job finishes, or with its state when the wait ends', async () => {
    const q = queue('wait');
    const idle = await client.submit('ts.never', {}, { queue: q });
    const still = await client.wait(idle.id, { timeout: 300 });
    assert.equal(still.id, idle.id);
    assert.equal(still.status, 'pending');

    let release;
    const gate = new Promise((r) => (release = r));
    let started = false;
    const { w, done } = startWorker(q, {
      'ts.gated': async () => {
        started = true;
        await gate;
        return { answer: 42 };
      },
    });
    try {
      const job = await client.submit('ts.gated', {}, { queue: q });
      await waitUntil(() => started, { what: 'handler started' });
      const waiting = client.wait(job.id, { timeout: 30000 });
      release();
      const fin = await waiting; /* Had it not waited it would be running. */
      assert.equal(fin.status, 'completed');
      assert.deepEqual(fin.result, { answer: 42 });
      await assert.rejects(client.wait('00000000000000ff', { timeout: 1000 }), (e) => e.status === 404);
    } finally {
      w.stop();
      await done;
    }
  });

  test('events() streams a job\'s life in order', async () => {
    const q = queue('events');
    const ctrl = new AbortController();
    const got = [];
    const reading = (async () => {
      for await (const ev of client.events({ queue: q }, { signal: ctrl.signal })) got.push(ev);
    })();
    const { w, done } = startWorker(q, { 'ts.echo': async (job) => job.payload });
    try {
      /* Connected once a job submitted now shows up. */
      await waitUntil(async () => {
        await client.submit('ts.echo', { marker: true }, { queue: q });
        return got.some((e) => e.event === 'job.created');
      }, { interval: 200, what: 'the stream connected' });
      const job = await client.submit('ts.echo', { v: 1 }, { queue: q });
      await waitUntil(() => got.some((e) => e.event === 'job.completed' && e.job.id === job.id),
        { what: 'job.completed event' });
      const mine = got.filter((e) => e.job && e.job.id === job.id);
      assert.deepEqual(mine.map((e) => e.event), ['job.created', 'job.started', 'job.completed']);
      assert.equal(mine[2].job.status, 'completed');
      assert.equal(mine[2].job.queue, q);
      assert.equal(mine[2].data.event, 'job.completed');
      assert.ok(got.every((e) => e.job === undefined || e.job.queue === q), 'filtered by queue');

      /* Resuming after an id replays what followed it (Last-Event-ID). */
      const replay = [];
      for await (const ev of client.events({ job: job.id }, { lastEventId: mine[0].id, signal: AbortSignal.timeout(15000) })) {
        replay.push(ev.event);
        if (ev.event === 'job.completed') break;
      }
      assert.deepEqual(replay, ['job.started', 'job.completed']);
      const ids = got.filter((e) => e.id).map((e) => e.id.split('-').map(Number));
      for (let i = 1; i < ids.length; i++) {
        const [a, b] = [ids[i - 1], ids[i]];
        assert.ok(b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]), `ids increase: ${a} then ${b}`);
      }
    } finally {
      ctrl.abort();
      await reading;
      w.stop();
      await done;
    }
  });
});
