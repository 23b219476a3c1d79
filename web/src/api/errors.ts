// ApiError carries the HTTP status of a failed call so every page can tell forbidden from broken.
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;

  constructor(status: number, message: string, code?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function isForbidden(err: unknown): boolean {
  return err instanceof ApiError && err.status === 403;
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404;
}

/** The message of a gateway error body ({code, message}) or a generic one. */
export function errorFromBody(status: number, body: unknown): ApiError {
  let message = `Request failed (HTTP ${status}).`;
  let code: string | undefined;
  if (body && typeof body === 'object') {
    const b = body as { message?: unknown; code?: unknown };
    if (typeof b.message === 'string' && b.message !== '') message = b.message;
    if (typeof b.code === 'string') code = b.code;
    else if (typeof b.code === 'number') code = String(b.code);
  }
  return new ApiError(status, message, code);
}
