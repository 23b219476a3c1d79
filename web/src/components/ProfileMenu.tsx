import * as DropdownMenu from '@radix-ui/react-dropdown-menu';
import { useNavigate } from 'react-router';
import { useMe } from '../auth/session';
import { logout } from '../auth/me';
import { nav } from '../nav';

/** The profile icon in the top right corner: Settings and Sign out. */
export function ProfileMenu() {
  const me = useMe();
  const navigate = useNavigate();
  const signOut = async () => {
    try {
      await logout(me.csrfToken);
    } finally {
      nav.assign('/auth/login?return_to=%2F');
    }
  };
  return (
    <DropdownMenu.Root>
      <DropdownMenu.Trigger className="profile-button" aria-label={`Profile: ${me.name}`}>
        <svg aria-hidden="true" focusable="false" width="22" height="22" viewBox="0 0 24 24" fill="currentColor">
          <circle cx="12" cy="8" r="4" />
          <path d="M4 20c0-4 3.6-6.5 8-6.5s8 2.5 8 6.5v1H4z" />
        </svg>
      </DropdownMenu.Trigger>
      <DropdownMenu.Portal>
        <DropdownMenu.Content className="menu" align="end" sideOffset={6}>
          <DropdownMenu.Label className="menu-label">
            {me.name}
            {me.email !== '' && <span className="muted"> {me.email}</span>}
          </DropdownMenu.Label>
          <DropdownMenu.Separator className="menu-sep" />
          <DropdownMenu.Item className="menu-item" onSelect={() => void navigate('/settings/notifications')}>
            Settings
          </DropdownMenu.Item>
          <DropdownMenu.Item className="menu-item" onSelect={() => void signOut()}>
            Sign out
          </DropdownMenu.Item>
        </DropdownMenu.Content>
      </DropdownMenu.Portal>
    </DropdownMenu.Root>
  );
}
