// Shared assertions for the states every page has.
import { screen } from '@testing-library/react';
import { expect } from 'vitest';

export async function expectLoading(text: RegExp | string) {
  const [el] = await screen.findAllByText(text);
  expect(el).toHaveAttribute('role', 'status');
}

export async function expectError() {
  const [alert] = await screen.findAllByText(/Could not load this/);
  expect(alert!.closest('[role="alert"]')).not.toBeNull();
  expect(screen.getAllByRole('button', { name: 'Try again' }).length).toBeGreaterThan(0);
}

export async function expectForbidden() {
  expect((await screen.findAllByText("You don't have access to this page.")).length).toBeGreaterThan(0);
}

export async function expectOneH1(name: string) {
  expect(await screen.findByRole('heading', { level: 1, name })).toBeInTheDocument();
  expect(screen.getAllByRole('heading', { level: 1 })).toHaveLength(1);
}
