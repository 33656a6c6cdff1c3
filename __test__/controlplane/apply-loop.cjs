// Child process for the kill -9 test: applies the same set of Services over and over,
// each round with a new `round` label, and prints "applied <round> <revision>" once an
// apply has resolved (so is durable). Usage: node apply-loop.cjs STORE_MODULE DATA_DIR COUNT
'use strict'
const { FileStore } = require(process.argv[2])
const dataDir = process.argv[3]
const count = Number(process.argv[4])

const services = (round) =>
  Array.from({ length: count }, (_, i) => ({
    apiVersion: 'mesh/v1',
    kind: 'Service',
    name: `svc-${i}`,
    endpoints: [1, 2, 3, 4].map((n) => ({ address: `127.0.0.${n}:${8000 + i}`, labels: { round: String(round) } })),
  }))

async function main() {
  const store = await FileStore.open(dataDir)
  const { entries } = await store.list()
  let round = entries.length === 0 ? 0 : Number(entries[0].resource.endpoints[0].labels.round)
  for (;;) {
    round += 1
    const { revision } = await store.apply(services(round), { source: 'loop' })
    process.stdout.write(`applied ${round} ${revision}\n`)
  }
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`)
  process.exit(1)
})
