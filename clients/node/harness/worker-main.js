'use strict';
/* A worker process for the SIGTERM test: ROTA_SERVERS (comma list),
 * ROTA_QUEUE, ROTA_NAME. Runs "ts.slow" jobs (300 ms, result "done") until
 * SIGTERM, then exits 0 once run() has drained and deregistered. */

const { Client, Worker } = require('..');

(async () => {
  const client = new Client({ servers: process.env.ROTA_SERVERS.split(',') });
  const worker = new Worker(client, { queues: [process.env.ROTA_QUEUE], name: process.env.ROTA_NAME, leaseWaitMs: 500 });
  worker.handle('ts.slow', async () => {
    await new Promise((r) => setTimeout(r, 300));
    return 'done';
  });
  await worker.run();
  await client.close();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
