import { defineConfig } from 'vite';

// The build is committed (ui/dist, embedded by ui/embed.go) and CI rebuilds
// it to check it is current, so it must be byte-for-byte reproducible: no
// source maps with absolute paths, no timestamps, stable chunk names.
export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:7070' },
  },
  test: {
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
  },
} as any);
