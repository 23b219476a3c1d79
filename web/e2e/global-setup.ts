import fs from 'node:fs';
import type { FullConfig } from '@playwright/test';
import { screenshotsDir } from './lib/paths';
import { startStack } from './lib/stack';

/** Starts the stack once for the whole suite; the returned function is the global teardown. */
export default async function globalSetup(_config: FullConfig): Promise<() => Promise<void>> {
  // The screenshots are this run's only.
  fs.rmSync(screenshotsDir, { recursive: true, force: true });
  const started = Date.now();
  const s = await startStack();
  console.log(
    `tally stack up in ${((Date.now() - started) / 1000).toFixed(1)}s: console ${s.info.consoleUrl}, mailpit ${s.info.mailpitUrl}, ` +
      `checkout ${s.info.checkoutUrl}, logs ${s.info.logsDir} (tally-dev output: ${s.log})`,
  );
  return async () => {
    await s.stop();
  };
}
