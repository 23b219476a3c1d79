// Full-page navigations (sign-in, checkout, sign-out), in one place so tests can observe them.
export const nav = {
  assign(url: string): void {
    window.location.assign(url);
  },
};

export function currentPath(): string {
  return `${window.location.pathname}${window.location.search}`;
}

export function loginUrl(returnTo: string = currentPath()): string {
  return `/auth/login?return_to=${encodeURIComponent(returnTo)}`;
}

export function redirectToLogin(): void {
  nav.assign(loginUrl());
}
