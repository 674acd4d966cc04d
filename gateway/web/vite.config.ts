import { defineConfig } from 'vitest/config';

// The gateway's build script sets WEB_OUT_DIR (a folder under Cargo's OUT_DIR), so nothing built is
// written into the source tree; `npm run build` alone writes to dist/.
const outDir = process.env.WEB_OUT_DIR || 'dist';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2020',
    // No inline script anywhere: the page's Content-Security-Policy allows none.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    rollupOptions: {
      output: {
        // The gateway matches paths case-insensitively (it lowercases them before routing), so
        // every hashed name is lowercase hex.
        hashCharacters: 'hex',
        entryFileNames: 'assets/[name]-[hash].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
