import { useState } from 'react';

/** Page tokens as a stack: "" is the first page; Next pushes the answer's next token. */
export function usePageTokens(): PageTokens {
  const [stack, setStack] = useState<string[]>(['']);
  const current = stack[stack.length - 1] ?? '';
  return {
    current,
    page: stack.length,
    next: (token: string) => setStack((s) => [...s, token]),
    prev: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
    reset: () => setStack(['']),
  };
}

export interface PageTokens {
  /** The token of the page shown ("" for the first). */
  current: string;
  /** The page number shown, from 1. */
  page: number;
  next: (token: string) => void;
  prev: () => void;
  reset: () => void;
}

export function Pager({
  label,
  page,
  nextToken,
  onNext,
  onPrev,
  busy,
}: {
  label: string;
  page: number;
  nextToken: string | undefined;
  onNext: (token: string) => void;
  onPrev: () => void;
  busy?: boolean;
}) {
  if (page === 1 && !nextToken) return null;
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" className="btn" onClick={onPrev} disabled={page <= 1 || busy}>
        Previous page
      </button>
      <span aria-live="polite">Page {page}</span>
      <button
        type="button"
        className="btn"
        onClick={() => nextToken && onNext(nextToken)}
        disabled={!nextToken || busy}
      >
        Next page
      </button>
    </nav>
  );
}
