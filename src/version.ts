// The package version, read once from package.json. Every command's --version, the
// proxy's Hello and mesh-control's Status report it.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'

let cached: string | undefined

/** package.json's version (`src/` and `dist/` are both one level below the package root). */
export function packageVersion(): string {
  if (cached === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version?: unknown }
      cached = typeof pkg.version === 'string' ? pkg.version : 'unknown'
    } catch {
      cached = 'unknown'
    }
  }
  return cached
}
