// Calls to the real stack that a person does not make through the console: what the model
// backend records (Debit over gRPC, with grpcurl), and reads that check what the pages show.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { binDir } from './paths';
import { stack } from './stack';
import { mintToken, people, type Identity } from './tokens';

const run = promisify(execFile);

export interface Money {
  currencyCode: string;
  units: string;
  nanos: number;
}

/** Money as integer nanos (exact); zero fields may be left out (protojson over gRPC omits them). */
export function nanos(m: Partial<Money> | undefined): bigint {
  if (!m) return 0n;
  return BigInt(m.units ?? '0') * 1_000_000_000n + BigInt(m.nanos ?? 0);
}

/** A REST call through the gateway with a bearer token, as an API client makes it. */
export async function rest<T = unknown>(who: Identity, method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(stack().gatewayUrl + route, {
    method,
    headers: { Authorization: `Bearer ${mintToken(who)}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed as T };
}

export async function restOK<T = unknown>(who: Identity, method: string, route: string, body?: unknown): Promise<T> {
  const res = await rest<T>(who, method, route, body);
  if (res.status < 200 || res.status > 299) {
    throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

export interface Balance {
  orgId: string;
  balance: Money;
  available: Money;
  expiresAt?: string;
}

/** The balance of who's organization, read through the REST API. */
export function balance(who: Identity & { org: string }): Promise<Balance> {
  return restOK<Balance>(who, 'GET', `/v1/orgs/${who.org}/balance`);
}

/**
 * Records usage of a model as the model backend does: LedgerService.Debit over gRPC (grpcurl,
 * with server reflection), priced by the ledger from the price list.
 */
export async function debitUsage(org: string, modelId: string, quantities: Record<string, string>, idempotencyKey: string): Promise<unknown> {
  const ledger = stack().grpc.ledger;
  if (!ledger) throw new Error('the stack has no ledger');
  const req = { orgId: org, idempotencyKey, description: `e2e usage of ${modelId}`, usage: { modelId, quantities } };
  const { stdout } = await run(
    path.join(binDir, 'grpcurl'),
    ['-plaintext', '-max-time', '10', '-H', `authorization: Bearer ${mintToken(people.backend)}`, '-d', JSON.stringify(req), ledger, 'tally.ledger.v1.LedgerService/Debit'],
    { timeout: 15_000 },
  );
  return JSON.parse(stdout);
}

/**
 * Starts metering a rented instance as the instance controller does:
 * InstanceMeteringService.StartMetering over gRPC (the first period is charged at once).
 */
export async function startRental(org: string, instanceId: string, instanceType: string): Promise<{ rental: { hourlyPrice: Money; periodsCharged: string; totalCharged: Money } }> {
  const addr = stack().grpc['instances-metering'];
  if (!addr) throw new Error('the stack has no instances-metering');
  const req = { instanceId, orgId: org, instanceType, idempotencyKey: `start-${instanceId}` };
  const { stdout } = await run(
    path.join(binDir, 'grpcurl'),
    ['-plaintext', '-max-time', '10', '-H', `authorization: Bearer ${mintToken(people.backend)}`, '-d', JSON.stringify(req), addr, 'tally.instances.v1.InstanceMeteringService/StartMetering'],
    { timeout: 15_000 },
  );
  return JSON.parse(stdout);
}
