import { timingSafeEqual } from 'crypto';
import { REFUSALS_LOG_INTERVAL_MS } from './admission';
import { sha256 } from './hash';
import { CountedLine, type Logger } from './log';
import type { RefusalReason } from './metrics';
import { booleanText, ConfigurationError, param, readParams } from './params';

/**
 * The optional shared secret between callers and functions. The generated manifests fill these variables from the
 * Secret `falco-response-shared-secret` (optional: absent Secret, no check, but for a function that requires it,
 * CallerPolicy below, which then refuses every call):
 * - INBOUND_SECRET: when set, a call must carry `Authorization: Bearer <secret>` or it is refused (401);
 * - OUTBOUND_SECRET: the forwarder sends it to the actions it calls.
 */
export const INBOUND_SECRET_ENV = 'INBOUND_SECRET';
export const OUTBOUND_SECRET_ENV = 'OUTBOUND_SECRET';
export const SHARED_SECRET_NAME = 'falco-response-shared-secret';

/** The variable that lets a function that requires the shared secret run without one, every caller accepted. */
export const ALLOW_UNAUTHENTICATED_ENV = 'ALLOW_UNAUTHENTICATED';

/**
 * The parameter a function that requires the shared secret declares (lib/action.ts `requiresSharedSecret`): read by
 * the caller check, before all other configuration, and listed with the function's parameters.
 */
export const callerParams = () => ({
  allowUnauthenticated: param(
    ALLOW_UNAUTHENTICATED_ENV,
    booleanText,
    'false',
    `true: run without the shared secret (the Secret \`${SHARED_SECRET_NAME}\`, key \`token\`), accepting every caller that reaches the port; false: without it, refuse every call`,
  ),
});

/**
 * How a function treats an absent shared secret: `optional` accepts every caller (a warning at start); `required` (a
 * function that deletes what an alert names) refuses every call unless ALLOW_UNAUTHENTICATED is true. `why` says, in
 * the start-up error, what an unauthenticated caller could make it do.
 */
export type CallerPolicy = { readonly secret: 'optional' } | { readonly secret: 'required'; readonly why: string };

/** What a secret variable holds: nothing (the optional Secret does not exist), a usable token, or something broken. */
export type SecretSetting =
  | { readonly kind: 'absent' }
  | { readonly kind: 'set'; readonly value: string; readonly trimmedLineBreak: boolean }
  | { readonly kind: 'broken'; readonly problem: string };

/** RFC 6750 b64token (RFC 7235 token68): the only text a bearer credential may be. */
const TOKEN_CHARACTER = /[A-Za-z0-9\-._~+/]/;
const TOKEN_RULE = "a bearer token (RFC 6750: letters, digits and - . _ ~ + /, optionally ending with '='), such as the output of `openssl rand -hex 32`";

/** What kind of character sits where a token character was expected; never the character itself (it is the secret). */
function kindOf(character: string): string {
  const code = character.codePointAt(0) ?? 0;
  if (character === ' ') return 'a space';
  if (character === '\t') return 'a tab';
  if (character === '\r' || character === '\n') return 'a line break';
  if (code < 0x20 || code === 0x7f) return 'a control character';
  if (code > 0x7f) return 'a non-ASCII character';
  if (character === '=') return "an '=' that is not at the end";
  return 'an ASCII punctuation character outside the allowed ones';
}

/**
 * Reads a secret variable and says exactly what is wrong with it, without ever quoting it. Trailing line breaks are
 * dropped (a Secret made with `--from-file` from a file written by `echo` ends with one; no header value can hold
 * one, so it cannot be part of the secret); anything else that cannot travel as a bearer token makes it broken.
 */
export function readSecret(env: Readonly<Record<string, string | undefined>>, name: string): SecretSetting {
  const raw = env[name];
  if (raw === undefined) return { kind: 'absent' };
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === '\n' || raw[end - 1] === '\r')) end--;
  const value = raw.slice(0, end);
  if (value.trim() === '') {
    const what = raw === '' ? 'empty' : 'blank (only spaces or line breaks)';
    return {
      kind: 'broken',
      problem: `${name} is set but ${what}: an empty secret would let every caller in, so the function refuses every call; put ${TOKEN_RULE} in the Secret ${SHARED_SECRET_NAME}, or delete the key to run without a secret`,
    };
  }
  const characters = [...value];
  let lastToken = characters.length;
  while (lastToken > 0 && characters[lastToken - 1] === '=') lastToken--;
  const bad = characters.findIndex((c, i) => (i < lastToken ? !TOKEN_CHARACTER.test(c) : c !== '='));
  const badAt = lastToken === 0 ? 0 : bad;
  if (badAt !== -1) {
    return {
      kind: 'broken',
      problem: `${name} is not ${TOKEN_RULE}: character ${badAt + 1} is ${lastToken === 0 ? "an '=' with nothing before it" : kindOf(characters[badAt])}; a header cannot carry it, so the function refuses every call until the Secret ${SHARED_SECRET_NAME} is fixed`,
    };
  }
  return { kind: 'set', value, trimmedLineBreak: end < raw.length };
}

/** Logs, once at start, what a secret setting means: a warning when absent or trimmed, an error when broken. */
export function logSecretSetting(setting: SecretSetting, name: string, absentMeans: string, log: Logger): void {
  if (setting.kind === 'absent') log.warn(`no shared secret: ${absentMeans}`, { variable: name, secret: SHARED_SECRET_NAME });
  else if (setting.kind === 'broken') log.error('the shared secret is unusable: the function refuses every call', { variable: name, error: setting.problem });
  else if (setting.trimmedLineBreak) {
    log.warn(`the shared secret ends with a line break, which is not part of it (callers send it without)`, { variable: name });
  }
}

function authorizationHeader(event: unknown): string | undefined {
  const headers = (event as { extensions?: { request?: { headers?: Record<string, unknown> } } } | null)?.extensions?.request?.headers;
  const value = headers?.authorization;
  return typeof value === 'string' ? value : undefined;
}

/** The credentials of `Bearer <token>`: the scheme in any case (RFC 7235 section 2.1), one or more spaces. */
function bearerToken(header: string): string | undefined {
  const space = header.indexOf(' ');
  if (space === -1 || header.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  let start = space;
  while (header[start] === ' ') start++;
  return header.slice(start);
}


/**
 * Whether the call may go on: always when no secret is configured; else only with the secret as bearer token. Both
 * sides are hashed first, so the comparison takes the same time whatever the header's length or content.
 */
export function isAuthorized(event: unknown, secret: string | undefined): boolean {
  if (secret === undefined) return true;
  const header = authorizationHeader(event);
  const token = header === undefined ? undefined : bearerToken(header);
  const matches = timingSafeEqual(sha256(token ?? ''), sha256(secret));
  return token !== undefined && matches;
}

export const UNAUTHORIZED_MESSAGE =
  'unauthorized: this function requires the shared secret (a header `Authorization: Bearer <secret>`) and the call did not carry it';

/** What every caller is told while the function's own secret is broken: nothing about the secret or its value. */
export const SECRET_UNUSABLE_MESSAGE = 'the function refuses every call: its configuration is broken (its log says what to fix)';

/** A call without the shared secret, when one is configured. */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
  constructor() {
    super(UNAUTHORIZED_MESSAGE);
  }
}

/** Any call while the inbound secret is broken: the function fails closed rather than run open. */
export class SecretUnusableError extends Error {
  override name = 'SecretUnusableError';
  constructor() {
    super(SECRET_UNUSABLE_MESSAGE);
  }
}

/** What every caller is told while a function that requires the shared secret has none: the Secret to create. */
export const SECRET_REQUIRED_MESSAGE = `the function refuses every call: it requires the shared secret (the Secret ${SHARED_SECRET_NAME}, key token) and none is configured`;

/** Any call to a function that requires the shared secret while none is configured (and ALLOW_UNAUTHENTICATED is not true). */
export class SecretRequiredError extends Error {
  override name = 'SecretRequiredError';
  constructor() {
    super(SECRET_REQUIRED_MESSAGE);
  }
}

/** Why callerCheck refused a caller, or undefined for any other error: it was logged there, counted, and not per call. */
export function callerRefusal(error: unknown): RefusalReason | undefined {
  if (error instanceof UnauthorizedError) return 'unauthorized';
  if (error instanceof SecretUnusableError) return 'secret-unusable';
  return error instanceof SecretRequiredError ? 'secret-missing' : undefined;
}

/**
 * What an absent secret means to a function that requires one: accepted (ALLOW_UNAUTHENTICATED is true, a warning)
 * or refused (an error naming the Secret to create), logged at start. A value of ALLOW_UNAUTHENTICATED that is not
 * true or false refuses too: fail closed.
 */
function requiredSecretAbsent(env: Readonly<Record<string, string | undefined>>, policy: Extract<CallerPolicy, { secret: 'required' }>, log: Logger): 'accepted' | 'refused' {
  let allowed: boolean;
  try {
    allowed = readParams(callerParams(), env).allowUnauthenticated;
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    log.error(`no shared secret, and ${ALLOW_UNAUTHENTICATED_ENV} is not true or false: the function refuses every call`, {
      variable: INBOUND_SECRET_ENV,
      secret: SHARED_SECRET_NAME,
      error: error.message,
    });
    return 'refused';
  }
  if (allowed) {
    log.warn(`no shared secret, and ${ALLOW_UNAUTHENTICATED_ENV} is true: every caller is accepted, though ${policy.why}`, { variable: INBOUND_SECRET_ENV, secret: SHARED_SECRET_NAME });
    return 'accepted';
  }
  log.error(
    `no shared secret: the function refuses every call, because ${policy.why}; create the Secret ${SHARED_SECRET_NAME} with the key token in the function's namespace and restart it, or set ${ALLOW_UNAUTHENTICATED_ENV}=true to accept every caller`,
    { variable: INBOUND_SECRET_ENV, secret: SHARED_SECRET_NAME },
  );
  return 'refused';
}

/**
 * The first thing a runner reads, apart from all other configuration: the inbound secret. The returned check is the
 * first thing every call runs, so an unauthenticated caller learns nothing about the configuration:
 * `const admit = callerCheck(env, log, now, policy); … admit(event)` throws UnauthorizedError, SecretUnusableError or
 * SecretRequiredError (`policy` requires the secret and there is none).
 * Refused calls are logged as 503s are, one line a second at most with their count: any pod that reaches the port
 * could otherwise write a line per call, cheaply (they come before the in-flight limit), and push the lines about
 * alerts handled out of the pod's rotated log.
 */
export function callerCheck(
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  now: () => number = Date.now,
  policy: CallerPolicy = { secret: 'optional' },
): (event: unknown) => void {
  const setting = readSecret(env, INBOUND_SECRET_ENV);
  const absent = setting.kind === 'absent' && policy.secret === 'required' ? requiredSecretAbsent(env, policy, log) : undefined;
  if (absent === undefined) logSecretSetting(setting, INBOUND_SECRET_ENV, 'every caller is accepted (the Secret or its key does not exist)', log);
  const refusals =
    setting.kind === 'broken'
      ? new CountedLine(
          (refused) => log.error(`calls refused with 500: the shared secret is unusable (${INBOUND_SECRET_ENV})`, { refused, error: setting.problem }),
          REFUSALS_LOG_INTERVAL_MS,
          now,
        )
      : absent === 'refused'
      ? new CountedLine(
          (refused) => log.error(`calls refused with 500: the function requires the shared secret and none is configured (${INBOUND_SECRET_ENV})`, { refused, secret: SHARED_SECRET_NAME }),
          REFUSALS_LOG_INTERVAL_MS,
          now,
        )
      : new CountedLine(
          (refused) => log.warn(`calls refused with 401: they did not carry the shared secret (${INBOUND_SECRET_ENV})`, { refused }),
          REFUSALS_LOG_INTERVAL_MS,
          now,
        );
  return (event) => {
    if (setting.kind === 'broken') {
      refusals.add();
      throw new SecretUnusableError();
    }
    if (absent === 'refused') {
      refusals.add();
      throw new SecretRequiredError();
    }
    if (setting.kind === 'set' && !isAuthorized(event, setting.value)) {
      refusals.add();
      throw new UnauthorizedError();
    }
  };
}
