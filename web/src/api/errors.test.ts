import { describe, expect, it } from 'vitest';

import { ApiError, errorFromBody, isForbidden, isNotFound } from './errors';

describe('errorFromBody', () => {
  it('reads the code name, the message and the field violations', () => {
    const err = errorFromBody(400, {
      code: 'INVALID_ARGUMENT',
      message: 'invalid request: amount: amount is required',
      details: [
        { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1s' },
        {
          '@type': 'type.googleapis.com/google.rpc.BadRequest',
          fieldViolations: [{ field: 'amount', description: 'amount is required' }],
        },
      ],
    });
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe('invalid request: amount: amount is required');
    expect(err.fieldViolations).toEqual([{ field: 'amount', description: 'amount is required' }]);
    expect(err.violationOf('amount')).toBe('amount is required');
    expect(err.violationOf('org_id')).toBeUndefined();
  });

  it('tells forbidden and not found by the HTTP status', () => {
    expect(isForbidden(errorFromBody(403, { code: 'PERMISSION_DENIED', message: 'no', details: [] }))).toBe(true);
    expect(isNotFound(errorFromBody(404, { code: 'NOT_FOUND', message: 'no such route', details: [] }))).toBe(true);
    expect(isForbidden(errorFromBody(404, undefined))).toBe(false);
  });

  it('falls back to a generic message for other bodies', () => {
    const err = errorFromBody(502, '<html>bad gateway</html>');
    expect(err.message).toBe('Request failed (HTTP 502).');
    expect(err.code).toBeUndefined();
    expect(err.fieldViolations).toEqual([]);
    // A numeric code (the shape before issue 15) or an unknown name is no code.
    expect(errorFromBody(400, { code: 3, message: 'bad' }).code).toBeUndefined();
    expect(errorFromBody(400, { code: 'TEAPOT', message: 'bad', details: 'x' }).code).toBeUndefined();
  });
});
