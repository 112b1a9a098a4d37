'use strict';
/* Destructive: the leader is SIGKILLed while a client submits. Every
 * submit must resolve (the client retries with the same idempotency keys
 * on the new leader) and the cluster must hold each job exactly once. */

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('..');
const { Cluster, waitUntil, hasEvents } = require('../harness/cluster');

let cluster;
let failed = false;

function test(name, fn) {
  it(name, async (t) => {
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

  test('events() reconnects with Last-Event-ID when its node dies: nothing missed, nothing twice', async (t) => {
    if (!(await hasEvents(cluster.nodes[0]))) return t.skip('this rotad has no GET /v1/events');
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
      await f.kill('SIGKILL');
      for (let i = 0; i < 10; i++) created.push((await writer.submit('noop', { i }, { queue: q })).id);
      const last = created[created.length - 1];
      await waitUntil(() => createdIds().includes(last), { what: 'the last job.created, after the reconnect' });
      assert.deepEqual(createdIds(), created.slice(first), 'each event once, in order');
    } finally {
      ctrl.abort();
      await reading;
      await reader.close();
      await writer.close();
    }
    cluster.restart(f);
    await cluster.leader();
  });

  test('leader killed while submitting: no submit lost, no job twice', async () => {
    const client = new Client({ servers: cluster.urls });
    const q = `ts-failover-${process.pid}`;
    const old = await cluster.leader();
    const rounds = 30;
    const per = 10;
    const submitted = [];
    let killed = null;
    try {
      for (let r = 0; r < rounds; r++) {
        const batch = Array.from({ length: per }, (_, i) => client.submit('noop', { r, i }, { queue: q }));
        if (r === 5) {
          /* Killed with this round's submits in flight; the next rounds
           * start with the dead leader cached. */
          await old.kill('SIGKILL');
          killed = client.requests;
        }
        submitted.push(...(await Promise.all(batch)));
      }
      assert.equal(old.alive(), false);
      assert.ok(killed !== null);
      const lead = await cluster.leader();
      assert.notEqual(lead.id, old.id);

      assert.equal(submitted.length, rounds * per);
      const ids = new Set(submitted.map((j) => j.id));
      assert.equal(ids.size, rounds * per, 'one job per submit');
      const payloads = new Set(submitted.map((j) => `${j.payload.r}.${j.payload.i}`));
      assert.equal(payloads.size, rounds * per);

      /* The new leader holds exactly these jobs (after a barrier). */
      const fresh = new Client({ servers: [lead.url], batchLingerMs: 0 });
      try {
        await fresh.get(submitted[submitted.length - 1].id, { consistency: 'linearizable' });
        const listed = [];
        for await (const j of fresh.list({ queue: q, limit: 1000 })) listed.push(j.id);
        assert.equal(listed.length, rounds * per, 'no duplicate and no loss');
        assert.deepEqual(new Set(listed), ids);
      } finally {
        await fresh.close();
      }
    } finally {
      await client.close();
    }
  });
});
