#!/usr/bin/env node
'use strict'
// The `mesh-proxy` command: everything lives in the compiled TypeScript (src/cli/mesh-proxy.ts).
let cli
try {
  cli = require('../dist/cli/mesh-proxy.js')
} catch (err) {
  const missing = err && err.code === 'MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]mesh-proxy\.js/.test(err.message)
  process.stderr.write(
    missing
      ? 'mesh-proxy: the package is not built (dist/ is missing); run `npm run build`\n'
      : `mesh-proxy: cannot load: ${String(err && err.message).split('\n')[0]}\n`,
  )
  process.exit(1)
}
cli.runFromCommandLine()
