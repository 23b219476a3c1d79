/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` proxies the API and the auth routes to the gateway (make run) so the session cookie
// stays same-origin; the built console is served by the gateway itself (TALLY_CONSOLE_DIR).
const gateway = process.env.TALLY_GATEWAY_URL ?? 'http://localhost:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/v1': gateway,
      '/auth': gateway,
      '/openapi.json': gateway,
    },
  },
  build: {
    outDir: 'dist',
    sourcemap: false,
    manifest: true,
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}', 'test/**/*.test.{ts,tsx}'],
    // A test waits on the DOM, not the clock: on a loaded 2-core machine jsdom renders take
    // seconds, so the per-test bound is generous (a hung test still fails).
    testTimeout: 20_000,
  },
});
