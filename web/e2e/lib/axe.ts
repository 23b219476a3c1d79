// axe-core on a page: 0 serious or critical violations. The engine is evaluated through the
// DevTools protocol, so a Content-Security-Policy that forbids inline scripts does not stop it.
import axe from 'axe-core';
import { expect, type Page } from '@playwright/test';

interface Violation {
  id: string;
  impact?: string | null;
  help: string;
  nodes: { target: unknown[]; html?: string; failureSummary?: string }[];
}

/**
 * Runs axe-core on the page, or only on `within` (a CSS selector) for an open menu or modal:
 * while one is open, the console's primitives (Radix) mark the rest of the page aria-hidden
 * behind a focus trap, and that rest was checked on its own before the overlay opened.
 */
export async function expectAccessible(page: Page, what: string, within?: string): Promise<void> {
  const injected = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe !== 'undefined');
  if (!injected) await page.evaluate(axe.source);
  const violations = await page.evaluate(async (selector) => {
    const w = window as unknown as { axe: { run(ctx: unknown, opts: object): Promise<{ violations: Violation[] }> } };
    const r = await w.axe.run(selector ? { include: [selector] } : document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, html: n.html, failureSummary: n.failureSummary })) }));
  }, within ?? null);
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const report = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n${v.nodes.map((n) => `    ${JSON.stringify(n.target)} ${(n.html ?? '').slice(0, 300)}\n      ${n.failureSummary ?? ''}`).join('\n')}`).join('\n');
  expect(bad.map((v) => `${v.impact} ${v.id}`), `axe-core on ${what} (${page.url()}):\n${report}`).toEqual([]);
}
