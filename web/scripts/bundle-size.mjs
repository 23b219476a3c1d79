// Prints the gzipped size of the console's initial JavaScript (the entry chunk and every chunk it
// imports statically, as Vite's manifest lists them) and of all the JavaScript; fails above the
// budget. Run after `vite build`.
import { readFile, readdir } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BUDGET = 250 * 1024;
const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist');
const manifest = JSON.parse(await readFile(path.join(dist, '.vite/manifest.json'), 'utf8'));

const entries = Object.entries(manifest).filter(([, c]) => c.isEntry);
if (entries.length === 0) throw new Error('no entry chunk in the Vite manifest');

const initial = new Set();
const visit = (key) => {
  const chunk = manifest[key];
  if (!chunk || initial.has(chunk.file)) return;
  initial.add(chunk.file);
  for (const imp of chunk.imports ?? []) visit(imp);
};
for (const [key] of entries) visit(key);

const gz = async (file) => gzipSync(await readFile(path.join(dist, file)), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

let initialBytes = 0;
for (const file of initial) {
  if (!file.endsWith('.js')) continue;
  const size = await gz(file);
  initialBytes += size;
  console.log(`  initial  ${file}  ${kb(size)} gz`);
}
const assets = (await readdir(path.join(dist, 'assets'))).filter((f) => f.endsWith('.js'));
let totalBytes = 0;
for (const f of assets) totalBytes += await gz(path.join('assets', f));

console.log(`initial JS: ${kb(initialBytes)} gzipped (budget ${kb(BUDGET)}); all JS: ${kb(totalBytes)} gzipped in ${assets.length} files`);
if (initialBytes > BUDGET) {
  console.error(`initial JS ${kb(initialBytes)} gzipped exceeds the ${kb(BUDGET)} budget`);
  process.exit(1);
}
