import { createHash, timingSafeEqual } from 'crypto';

/**
 * The optional shared secret between callers and functions. The generated manifests fill these variables from the
 * Secret `falco-response-shared-secret` (optional: absent Secret, no check):
 * - INBOUND_SECRET: when set, a call must carry `Authorization: Bearer <secret>` or it is refused (401);
 * - OUTBOUND_SECRET: the forwarder sends it to the actions it calls.
 */
export const INBOUND_SECRET_ENV = 'INBOUND_SECRET';
export const OUTBOUND_SECRET_ENV = 'OUTBOUND_SECRET';
export const SHARED_SECRET_NAME = 'falco-response-shared-secret';

/** The secret from the environment; empty or blank means none. */
export function secretFrom(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function authorizationHeader(event: unknown): string | undefined {
  const headers = (event as { extensions?: { request?: { headers?: Record<string, unknown> } } } | null)?.extensions?.request?.headers;
  const value = headers?.authorization;
  return typeof value === 'string' ? value : undefined;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * Whether the call may go on: always when no secret is configured; else only with the exact bearer header. Both
 * sides are hashed first, so the comparison takes the same time whatever the header's length or content.
 */
export function isAuthorized(event: unknown, secret: string | undefined): boolean {
  if (secret === undefined) return true;
  const given = authorizationHeader(event) ?? '';
  return timingSafeEqual(digest(given), digest(`Bearer ${secret}`));
}

export const UNAUTHORIZED_MESSAGE =
  'unauthorized: this function requires the shared secret (a header `Authorization: Bearer <secret>`) and the call did not carry it';
