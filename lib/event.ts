import * as D from 'io-ts/Decoder';
import { decodeOrThrow, describeValue, InvalidInputError, object } from './decode';
import { printable } from './text';
import { FalcoAlert } from './alert';

/** The Kubeless runtime's event, the envelope around the body (shared/PROTOCOLS.md section 1). */
export const KubelessEvent = object(
  { data: D.id<unknown>() },
  { 'event-id': D.string, 'event-type': D.string, 'event-time': D.string, 'event-namespace': D.string, extensions: D.id<unknown>() },
  'a Kubeless event',
);
export type KubelessEvent = D.TypeOf<typeof KubelessEvent>;

/** The part of Express's response we use: setting the status before returning the body. */
export interface StatusSettable {
  status(code: number): unknown;
}

export function responseOf(event: unknown): StatusSettable | undefined {
  const extensions = (event as { extensions?: { response?: unknown } } | null)?.extensions;
  const response = extensions?.response as { status?: unknown } | undefined;
  return typeof response?.status === 'function' ? (response as StatusSettable) : undefined;
}

/** A header of the call as the runtime kept it (Kubeless's Express request: names in lowercase), when it is text. */
export function requestHeader(event: unknown, name: string): string | undefined {
  const headers = (event as { extensions?: { request?: { headers?: Record<string, unknown> } } } | null)?.extensions?.request?.headers;
  const value = headers === undefined || headers === null || !Object.prototype.hasOwnProperty.call(headers, name) ? undefined : headers[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The body as JSON: Kubeless parses application/json itself, hands any other body over as a string and an
 * empty one as `{}`. A string is parsed here; an empty body is refused.
 */
export function bodyOf(data: unknown): unknown {
  if (typeof data === 'string') {
    if (data.trim() === '') throw new InvalidInputError(['the request body is empty: expected a Falco alert as JSON']);
    try {
      return JSON.parse(data) as unknown;
    } catch (error) {
      // The parser's message quotes a bit of the body: it is attacker-written too.
      const reason = printable((error as Error).message.slice(0, 200));
      throw new InvalidInputError([`the request body is not JSON (${reason}): got ${describeValue(data)}`]);
    }
  }
  if (data !== null && typeof data === 'object' && !Array.isArray(data) && Object.keys(data).length === 0) {
    throw new InvalidInputError(['the request body is empty: expected a Falco alert as JSON']);
  }
  return data;
}

export interface DecodedEvent {
  eventId: string | undefined;
  alert: FalcoAlert;
}

/** Layer one, the envelope; layer two, the alert. Throws InvalidInputError naming the path and the value. */
export function decodeEvent(event: unknown): DecodedEvent {
  const envelope = decodeOrThrow(KubelessEvent, event, 'event');
  const alert = decodeOrThrow(FalcoAlert, bodyOf(envelope.data), 'alert');
  return { eventId: envelope['event-id'], alert };
}
