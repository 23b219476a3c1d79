// The OIDC sign-in on a real provider: tally-oidc-dev (mockoidc with tally's claims, c-bff) and a
// second gateway of the same build configured for it (TALLY_OIDC_ISSUER), in front of the
// suite's services. Both are started for the test and stopped with SIGINT after it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { binDir, consoleDist } from './paths';
import { poll, stack } from './stack';

export interface OIDCGateway {
  issuer: string;
  url: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

interface Proc {
  child: ChildProcess;
  exited: () => string | undefined;
  stop(): Promise<void>;
}

function start(bin: string, args: string[], env: NodeJS.ProcessEnv, log: string): Proc {
  const out = fs.openSync(log, 'a');
  const child = spawn(path.join(binDir, bin), args, { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  let exited: string | undefined;
  const done = new Promise<void>((resolve) => child.on('exit', (code, sig) => ((exited = `${bin} exited (${sig ?? `code ${code}`}); see ${log}`), resolve())));
  return {
    child,
    exited: () => exited,
    async stop() {
      if (exited) return;
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await done;
      clearTimeout(t);
    },
  };
}

/** Starts the provider and a gateway that signs people in through it. */
export async function startOIDCGateway(logDir: string): Promise<OIDCGateway> {
  for (const b of ['tally-oidc-dev', 'gateway']) {
    if (!fs.existsSync(path.join(binDir, b))) throw new Error(`${b} is not built in ${binDir} (make build)`);
  }
  const s = stack();
  const providerLog = path.join(logDir, 'tally-oidc-dev.log');
  const provider = start('tally-oidc-dev', ['-addr', `127.0.0.1:${await freePort()}`], process.env, providerLog);
  const procs: Proc[] = [provider];
  const stopAll = async () => {
    for (const p of procs.reverse()) await p.stop();
  };
  try {
    // Its output: the issuer, then the gateway's settings that trust it (KEY=value, quoted when spaced).
    const settings = await poll('tally-oidc-dev prints its settings', 20_000, async () => {
      const line = fs.readFileSync(providerLog, 'utf8').split('\n').find((l) => l.startsWith('gateway:'));
      if (!line) return undefined;
      return Object.fromEntries([...line.matchAll(/(TALLY_[A-Z_]+)=("[^"]*"|\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/^"|"$/g, '')]));
    }, provider.exited);
    const port = await freePort();
    const url = `http://localhost:${port}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...settings,
      TALLY_ENV: 'development',
      TALLY_GATEWAY_HTTP_ADDR: `:${port}`,
      TALLY_CONSOLE_URL: url,
      TALLY_CONSOLE_DIR: consoleDist,
      TALLY_LEDGER_ADDR: s.grpc.ledger,
      TALLY_PRICING_ADDR: s.grpc.pricing,
      TALLY_PAYMENTS_ADDR: s.grpc.payments,
      TALLY_INSTANCES_ADDR: s.grpc['instances-metering'],
      TALLY_NOTIFICATIONS_ADDR: s.grpc.notifications,
    };
    const gateway = start('gateway', [], env, path.join(logDir, 'gateway-oidc.log'));
    procs.push(gateway);
    await poll('the OIDC gateway answers /healthz', 20_000, async () => ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok ? true : undefined), gateway.exited);
    return { issuer: settings.TALLY_OIDC_ISSUER!, url, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
