import { Link } from 'react-router';

export function NotFoundPage() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        There is no page at this address. Go to <Link to="/usage">Usage</Link> or <Link to="/billing">Billing</Link>.
      </p>
    </>
  );
}
