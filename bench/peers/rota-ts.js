'use strict'
// The peers harness (../shared/peers) through Rota's TypeScript client (clients/node, built):
// each submit() is one job, as an application would call it; the client's auto-batching
// (1 ms linger) coalesces the 32 in flight. bench/peers-ts.sh links this file into the
// harness's adapters/ for the run and removes it afterwards. W1 and W1-bulk only: the
// consumer side is the raw-HTTP adapter's (adapters/rota.js).
const path = require('node:path')
const { Client } = require(path.resolve(process.env.ROTA_ROOT || '.', 'clients/node'))

const nodes = () => (process.env.ROTA_NODES || 'http://127.0.0.1:18001').split(',')
const job = (cfg, data) => ({ queue: cfg.queue, ...(data.at !== undefined ? { run_at: new Date(data.at).toISOString() } : {}) })

module.exports = {
  name: 'rota-ts',
  async reset () {},
  async producer (cfg) {
    const client = new Client({ servers: nodes(), batchLingerMs: Number(process.env.ROTA_LINGER_MS || 1) })
    return {
      submit (k, data) { return client.submit('noop', data, job(cfg, data)) },
      submitBulk (k, items) { return client.submitMany(items.map(d => ({ type: 'noop', payload: d, ...job(cfg, d) }))) },
      async completedCount () { return NaN },
      async close () { await client.close() }
    }
  },
  async consumer () { throw new Error('rota-ts: producer only (W1, W1-bulk)') }
}
