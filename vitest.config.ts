import { configDefaults, defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    // The packaging suite needs cross-built artifacts; `npm run test:packaging` builds them
    // and runs it with __test__/packaging/vitest.config.mts.
    exclude: [...configDefaults.exclude, '__test__/packaging/**'],
    // End-to-end tests start real processes; two cores run at most two files at once.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
