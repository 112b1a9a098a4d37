'use strict';
/* Secure mode: HTTPS verified against the cluster CA (caFile) and access
 * control (token). */

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Client, Worker, RotaError } = require('..');
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

describe('secure mode', () => {
  before(async () => {
    cluster = await Cluster.start(3, { secure: true });
  });
  after(async () => {
    await cluster.stop(failed);
  });

  test('https with caFile and a token: submit, read, list, a worker runs the job', async () => {
    assert.ok(cluster.urls.every((u) => u.startsWith('https://')));
    const submitter = new Client({ servers: cluster.urls, caFile: cluster.ca, token: await cluster.makeToken('submit') });
    const workerClient = new Client({ servers: cluster.urls, caFile: cluster.ca, token: await cluster.makeToken('worker') });
    const q = `ts-secure-${process.pid}`;
    const w = new Worker(workerClient, { queues: [q], name: 'ts-secure', leaseWaitMs: 500 });
    w.handle('ts.sec', async (job) => ({ got: job.payload.n }));
    const running = w.run();
    try {
      const job = await submitter.submit('ts.sec', { n: 7 }, { queue: q });
      assert.equal((await submitter.get(job.id)).id, job.id);
      const fin = await waitUntil(async () => {
        const j = await submitter.get(job.id);
        return j.status === 'completed' ? j : null;
      }, { what: 'job completed' });
      assert.deepEqual(fin.result, { got: 7 });
      const ids = [];
      for await (const j of submitter.list({ queue: q })) ids.push(j.id);
      assert.deepEqual(ids, [job.id]);
    } finally {
      w.stop();
      await running;
      await submitter.close();
      await workerClient.close();
    }
  });

  test('no token: RotaError 401 unauthenticated; a read token may not submit: 403', async () => {
    const anon = new Client({ servers: cluster.urls, caFile: cluster.ca, batchLingerMs: 0 });
    const reader = new Client({ servers: cluster.urls, caFile: cluster.ca, token: await cluster.makeToken('read') });
    try {
      await assert.rejects(anon.submit('noop', {}), (e) => e instanceof RotaError && e.status === 401 && e.code === 'unauthenticated');
      await assert.rejects(reader.submit('noop', {}), (e) => e instanceof RotaError && e.status === 403 && e.code === 'forbidden');
    } finally {
      await anon.close();
      await reader.close();
    }
  });

  test('without the CA the client cannot connect (RotaError status 0)', async () => {
    const blind = new Client({ servers: [cluster.urls[0]], token: cluster.token, maxRetries: 1 });
    try {
      await assert.rejects(blind.get('0000000000000001'), (e) => e instanceof RotaError && e.status === 0);
    } finally {
      await blind.close();
    }
  });
});
