// The stack under test: bin/tally-dev (what `make run` starts) on its own data directory and
// ports, so the suite runs while a developer's `make run` is up. The global setup starts it;
// tests read where it answers from the environment the setup leaves them.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { binDir, consoleDist, e2eDir } from './paths';
import { mintToken, people } from './tokens';

/** <data dir>/stack.json, written by tally-dev once every service answers. */
export interface StackInfo {
  gatewayUrl: string;
  consoleUrl: string;
  checkoutUrl?: string;
  mailpitUrl?: string;
  smtpAddr?: string;
  grpc: Record<string, string>;
  databaseUrl: string;
  redisUrl: string;
  logsDir: string;
  pid: number;
}

const stackFileEnv = 'TALLY_E2E_STACK_FILE';

/** The running stack, for tests (the global setup set the variables). */
export function stack(): StackInfo {
  const file = process.env[stackFileEnv];
  if (!file) throw new Error(`${stackFileEnv} is unset: run the suite with \`npx playwright test\` (its global setup starts the stack)`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as StackInfo;
}

/** The console's base URL (the gateway serves it). */
export function consoleURL(): string {
  return process.env.TALLY_CONSOLE_URL || stack().consoleUrl;
}

/** mailpit's HTTP API base URL. */
export function mailpitURL(): string {
  const u = process.env.TALLY_MAILPIT_URL || stack().mailpitUrl;
  if (!u) throw new Error('the stack runs without mailpit (TALLY_SMTP_HOST set?)');
  return u;
}

/** The binaries a stack needs; a missing one fails the setup with the command that builds it. */
const required = ['tally-dev', 'tally-token', 'grpcurl', 'mailpit', 'ledger', 'pricing', 'payments', 'instances-metering', 'notifications', 'gateway'];

export interface StartedStack {
  info: StackInfo;
  log: string;
  stop(): Promise<void>;
}

class StackError extends Error {
  constructor(message: string, log: string, logsDir?: string) {
    super(`${message}\n  tally-dev output: ${log}${logsDir ? `\n  service logs:     ${logsDir}` : ''}\n--- last lines of ${log} ---\n${tail(log, 40)}`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/** Polls check until it returns a value (not undefined), or fails after timeoutMs naming what. */
export async function poll<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, abort?: () => string | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const aborted = abort?.();
    if (aborted) throw new Error(`${what}: ${aborted}`);
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs / 1000}s${last ? ` (last error: ${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function fetchOK(url: string, init?: RequestInit): Promise<Response | undefined> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
  if (res.ok) return res;
  throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${(await res.text()).slice(0, 200)}`);
}

/**
 * Starts bin/tally-dev on a fresh data directory (web/e2e/.stack, kept after the run for its logs)
 * with every port moved by TALLY_E2E_PORT_OFFSET (default 20000), and waits, each with a
 * deadline, for stack.json, the gateway's /healthz, a route of every service through the
 * gateway, the console's index page and mailpit's API.
 */
export async function startStack(): Promise<StartedStack> {
  const missing = required.filter((b) => !fs.existsSync(path.join(binDir, b)));
  if (missing.length > 0) {
    throw new Error(`not built in ${binDir}: ${missing.join(', ')}. Run \`make e2e\` (it builds the binaries, the console and the tools)`);
  }
  if (!fs.existsSync(path.join(consoleDist, 'index.html'))) {
    throw new Error(`the console is not built (no ${path.join(consoleDist, 'index.html')}). Run \`make e2e\` or \`npm --prefix web run build\``);
  }
  const dataDir = path.resolve(process.env.TALLY_E2E_DATA_DIR || path.join(e2eDir, '.stack'));
  // A stack left running by an interrupted run still owns the directory: never wipe it under it.
  const previous = path.join(dataDir, 'stack.json');
  if (fs.existsSync(previous)) {
    const pid = (JSON.parse(fs.readFileSync(previous, 'utf8')) as StackInfo).pid;
    if (pid > 0 && isAlive(pid)) {
      throw new Error(`a previous e2e stack still runs from ${dataDir} (tally-dev pid ${pid}): stop it (kill -INT ${pid}) and run again`);
    }
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  const log = path.join(dataDir, 'tally-dev.log');
  const out = fs.openSync(log, 'a');

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TALLY_DEV_DATA_DIR: dataDir,
    TALLY_DEV_PORT_OFFSET: process.env.TALLY_E2E_PORT_OFFSET || '20000',
    TALLY_BIN_DIR: binDir,
    TALLY_CONSOLE_DIR: consoleDist,
  };
  // A private stack: none of a developer's external services, keys or console URL.
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'TALLY_SMTP_HOST', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET', 'TALLY_CONSOLE_URL', 'TALLY_ENV']) {
    delete env[k];
  }
  const child: ChildProcess = spawn(path.join(binDir, 'tally-dev'), [], { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = `tally-dev exited (${signal ?? `code ${code}`})`;
      resolve();
    });
  });
  const stop = async () => {
    if (exited) return;
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exit;
    clearTimeout(timer);
  };

  try {
    const file = path.join(dataDir, 'stack.json');
    // PostgreSQL's first start (initdb) and every migration run before tally-dev writes stack.json.
    const info = await poll('tally-dev start', 120_000, async () => (fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as StackInfo) : undefined), () => exited);
    const gw = info.gatewayUrl;
    const member = mintToken(people.ada);
    const bearer = { headers: { Authorization: `Bearer ${member}` } };
    const checks: [string, () => Promise<unknown>][] = [
      ['gateway /healthz', () => fetchOK(`${gw}/healthz`)],
      ['pricing through the gateway', () => fetchOK(`${gw}/v1/pricing/models`)],
      ['ledger through the gateway', () => fetchOK(`${gw}/v1/orgs/acme/balance`, bearer)],
      ['payments through the gateway', () => fetchOK(`${gw}/v1/orgs/acme/payments`, bearer)],
      ['notifications through the gateway', () => fetchOK(`${gw}/v1/orgs/acme/members/user-ada/notification-settings`, bearer)],
      ['instances through the gateway', () => fetchOK(`${gw}/v1/orgs/acme/rentals`, bearer)],
      [
        'the console at /',
        async () => {
          const res = await fetchOK(`${gw}/`);
          const html = (await res?.text()) ?? '';
          if (!html.includes('<div id="root"')) throw new Error('/ does not serve the console');
          return res;
        },
      ],
      ['mailpit API', () => fetchOK(`${info.mailpitUrl}/api/v1/messages`)],
    ];
    for (const [what, check] of checks) {
      await poll(what, 30_000, async () => ((await check()) ? true : undefined), () => exited);
    }
    process.env[stackFileEnv] = file;
    process.env.TALLY_CONSOLE_URL = info.consoleUrl;
    if (info.mailpitUrl) process.env.TALLY_MAILPIT_URL = info.mailpitUrl;
    return { info, log, stop };
  } catch (err) {
    await stop();
    throw new StackError(`the stack did not start: ${err instanceof Error ? err.message : String(err)}`, log, path.join(dataDir, 'logs'));
  }
}
