// The packaging suite: packed tarballs, foreign architectures under qemu-user and the
// arm64 OCI image. It needs artifacts that take long to build, so `npm test` leaves it
// out and `npm run test:packaging` (scripts/test-packaging.sh) builds them and runs it.
import { fileURLToPath } from 'node:url'

import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['__test__/packaging/**/*.test.ts'],
    // Two cores: one qemu-emulated Node per core at most.
    maxWorkers: 2,
    minWorkers: 1,
    // Under qemu-user Node starts in seconds, not milliseconds.
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
})
