#!/usr/bin/env node
'use strict'
// The `mesh-control` command: everything lives in the compiled TypeScript (src/cli/mesh-control.ts).
let cli
try {
  cli = require('../dist/cli/mesh-control.js')
} catch (err) {
  const missing = err && err.code === 'MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]mesh-control\.js/.test(err.message)
  process.stderr.write(
    missing
      ? 'mesh-control: the package is not built (dist/ is missing); run `npm run build`\n'
      : `mesh-control: cannot load: ${String(err && err.message).split('\n')[0]}\n`,
  )
  process.exit(1)
}
cli.runFromCommandLine()
