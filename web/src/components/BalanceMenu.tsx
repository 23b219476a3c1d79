import * as DropdownMenu from '@radix-ui/react-dropdown-menu';
import { useNavigate } from 'react-router';
import { useBalanceQuery } from '../data/balance-query';
import { useNotificationSettingsQuery } from '../data/notification-settings-query';
import { compareMoney, formatMoney } from '../money';
import { formatDay } from '../dates';
import { useAddCredits } from './AddCreditsDialog';

/** The balance in the top right corner; clicking it opens Add Credits, Billing and Pricing. */
export function BalanceMenu({ org }: { org: string }) {
  const balance = useBalanceQuery(org);
  const settings = useNotificationSettingsQuery(org);
  const addCredits = useAddCredits();
  const navigate = useNavigate();

  const b = balance.data;
  const s = settings.data?.settings;
  const low =
    b !== undefined &&
    s?.lowCreditAlertEnabled === true &&
    s.lowCreditThreshold !== undefined &&
    compareMoney(b.balance, s.lowCreditThreshold) < 0;

  let text: string;
  if (balance.isPending) text = '…';
  else if (balance.isError || !b) text = 'unavailable';
  else text = formatMoney(b.balance ?? { currencyCode: 'USD', units: '0', nanos: 0 });

  return (
    <DropdownMenu.Root>
      {/* The name is the visible text: "Balance $42.50 expires Mar 1, 2027 Low balance". */}
      <DropdownMenu.Trigger className="balance-button">
        <span className="sr-only">Balance</span> <span className="balance-amount">{text}</span>
        {b?.expiresAt && (
          <>
            {' '}
            <span className="balance-expiry">expires {formatDay(b.expiresAt)}</span>
          </>
        )}
        {low && (
          <>
            {' '}
            <span className="badge badge-warn">Low balance</span>
          </>
        )}
      </DropdownMenu.Trigger>
      <DropdownMenu.Portal>
        <DropdownMenu.Content className="menu" align="end" sideOffset={6}>
          <DropdownMenu.Item className="menu-item" onSelect={() => addCredits.open()}>
            Add Credits
          </DropdownMenu.Item>
          <DropdownMenu.Item className="menu-item" onSelect={() => void navigate('/billing')}>
            Billing
          </DropdownMenu.Item>
          <DropdownMenu.Item className="menu-item" onSelect={() => void navigate('/pricing')}>
            Pricing
          </DropdownMenu.Item>
        </DropdownMenu.Content>
      </DropdownMenu.Portal>
    </DropdownMenu.Root>
  );
}
