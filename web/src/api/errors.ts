import type { components } from './schema';

/** The gateway's error body (the OpenAPI schema Error). */
export type ErrorBody = components['schemas']['Error'];

/** The name of a gRPC status code, as the gateway writes it: "INVALID_ARGUMENT". */
export type ErrorCode = ErrorBody['code'];

/** One field the gateway says is wrong (google.rpc.BadRequest). */
export interface FieldViolation {
  field: string;
  description: string;
}

const errorCodes: ReadonlySet<string> = new Set<ErrorCode>([
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);

const badRequestType = 'type.googleapis.com/google.rpc.BadRequest';

// ApiError carries the HTTP status of a failed call so every page can tell forbidden from broken,
// and the gateway's code and field violations when it answered one.
export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode | undefined;
  readonly fieldViolations: readonly FieldViolation[];

  constructor(status: number, message: string, code?: ErrorCode, fieldViolations: readonly FieldViolation[] = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fieldViolations = fieldViolations;
  }

  /** The description of what is wrong with field (a request field name, e.g. "amount"), if anything. */
  violationOf(field: string): string | undefined {
    return this.fieldViolations.find((v) => v.field === field)?.description;
  }
}

export function isForbidden(err: unknown): boolean {
  return err instanceof ApiError && err.status === 403;
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** The field violations of the google.rpc.BadRequest entries among details. */
function fieldViolationsOf(details: unknown): FieldViolation[] {
  if (!Array.isArray(details)) return [];
  const out: FieldViolation[] = [];
  for (const d of details) {
    if (!isObject(d) || d['@type'] !== badRequestType || !Array.isArray(d.fieldViolations)) continue;
    for (const v of d.fieldViolations) {
      if (isObject(v) && typeof v.field === 'string' && typeof v.description === 'string') {
        out.push({ field: v.field, description: v.description });
      }
    }
  }
  return out;
}

/**
 * The error of a failed call from the gateway's body ({code: "INVALID_ARGUMENT", message, details}),
 * or a generic one when the body is not that shape.
 */
export function errorFromBody(status: number, body: unknown): ApiError {
  let message = `Request failed (HTTP ${status}).`;
  if (!isObject(body)) return new ApiError(status, message);
  if (typeof body.message === 'string' && body.message !== '') message = body.message;
  const code = typeof body.code === 'string' && errorCodes.has(body.code) ? (body.code as ErrorCode) : undefined;
  return new ApiError(status, message, code, fieldViolationsOf(body.details));
}
