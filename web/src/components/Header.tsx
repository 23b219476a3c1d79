import { NavLink } from 'react-router';
import { useMe } from '../auth/session';
import { hasRole } from '../auth/me';
import { BalanceMenu } from './BalanceMenu';
import { ProfileMenu } from './ProfileMenu';

export function Header() {
  const me = useMe();
  const links: { to: string; label: string }[] = [
    { to: '/usage', label: 'Usage' },
    { to: '/instances', label: 'Instances' },
    { to: '/billing', label: 'Billing' },
    { to: '/pricing', label: 'Pricing' },
  ];
  if (hasRole(me, 'ops')) links.push({ to: '/ops', label: 'Ops' });
  return (
    <header className="site-header">
      <div className="header-row">
        <div className="brand">
          <span className="logo" aria-hidden="true">
            t
          </span>
          <span>
            <span className="org" title="Organization">
              {me.orgId !== '' ? me.orgId : 'tally'}
            </span>
            <span className="member muted">{me.name}</span>
          </span>
        </div>
        <div className="top-right">
          {me.orgId !== '' && <BalanceMenu org={me.orgId} />}
          <ProfileMenu />
        </div>
      </div>
      <nav aria-label="Main" className="main-nav">
        <ul>
          {links.map((l) => (
            <li key={l.to}>
              <NavLink to={l.to}>{l.label}</NavLink>
            </li>
          ))}
        </ul>
      </nav>
    </header>
  );
}
