import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** web/e2e, the suite's own directory. */
export const e2eDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The repository root (where go.work is). */
export const repoRoot = path.resolve(e2eDir, '..', '..');
/** The built Go binaries and tools, as the Makefile and tally-dev find them (TALLY_BIN_DIR). */
export const binDir = process.env.TALLY_BIN_DIR || path.join(repoRoot, 'bin');
/** The built console the gateway serves. */
export const consoleDist = path.join(repoRoot, 'web', 'dist');
/** Where every step's screenshot goes. */
export const screenshotsDir = path.join(e2eDir, 'screenshots');
