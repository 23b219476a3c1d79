import * as DropdownMenu from '@radix-ui/react-dropdown-menu';
import { useNavigate } from 'react-router';
import { useMe } from '../auth/session';
import { logout } from '../auth/me';
import { nav } from '../nav';

function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return (parts.slice(0, 2).map((p) => p[0]!.toUpperCase()).join('') || '?');
}

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
      <DropdownMenu.Trigger className="profile-button">
        {/* The initials are decoration; the name is text, so no aria-label hides what is seen. */}
        <span aria-hidden="true">{initials(me.name)}</span>
        <span className="visually-hidden">Profile: {me.name}</span>
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
