import { expect, type Page } from '@playwright/test';

/** Signs in on the development sign-in page (GET /auth/login → /auth/dev) as the named person. */
export async function signIn(page: Page, name: 'Ada Lovelace' | 'Grace Hopper' | 'Ops', returnTo = '/billing'): Promise<void> {
  await page.goto(`/auth/login?return_to=${encodeURIComponent(returnTo)}`);
  await page.getByRole('button', { name: new RegExp(name) }).click();
  await expect(page).toHaveURL((u) => u.pathname === returnTo.split('?')[0]);
  await expect(page.getByRole('banner')).toContainText(name);
}
