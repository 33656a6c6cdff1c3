'use strict'
// The quick start's workload: a tiny HTTP app that says who it is and what it received.
// PORT (default 8080) and HOST (default 127.0.0.1) pick where it listens.
const http = require('node:http')

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? '127.0.0.1'

const server = http.createServer((req, res) => {
  const body =
    JSON.stringify({ app: 'hello', method: req.method, path: req.url, host: req.headers.host ?? null }) + '\n'
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})

server.on('error', (err) => {
  process.stderr.write(`app: cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}\n`)
  process.exit(1)
})

server.listen(port, host, () => {
  process.stderr.write(`app: listening on http://${host}:${port}\n`)
})

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)))
}
