#!/usr/bin/env node
'use strict'
// The `meshctl` command: everything lives in the compiled TypeScript (src/cli/meshctl.ts).
let cli
try {
  cli = require('../dist/cli/meshctl.js')
} catch (err) {
  const missing = err && err.code === 'MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]meshctl\.js/.test(err.message)
  process.stderr.write(
    missing
      ? 'meshctl: the package is not built (dist/ is missing); run `npm run build`\n'
      : `meshctl: cannot load: ${String(err && err.message).split('\n')[0]}\n`,
  )
  process.exit(1)
}
cli.runFromCommandLine()
