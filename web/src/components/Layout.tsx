import { useEffect } from 'react';
import { Outlet, useLocation } from 'react-router';
import { Header } from './Header';

export function Layout() {
  const location = useLocation();
  // Move focus to the page on navigation so keyboard and screen-reader users land on the new h1.
  useEffect(() => {
    const h1 = document.querySelector<HTMLElement>('main h1');
    if (h1 && document.activeElement && document.activeElement !== document.body) {
      h1.setAttribute('tabindex', '-1');
      h1.focus({ preventScroll: true });
    }
  }, [location.pathname]);
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Header />
      <main id="main" className="page" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}
