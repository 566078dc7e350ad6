import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native tests share libtorch's thread pool; running files in parallel on 2 cores only adds contention.
    fileParallelism: false,
    pool: 'forks',
  },
});
