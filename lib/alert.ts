import * as t from 'io-ts';
import { withoutPrototypeKeys } from './decode';
import { PriorityCodec } from './priority';

/** Falco sends strings, numbers (pids, uids, ports), booleans and null (unknown) as field values. */
export const OutputFieldValue = t.union([t.string, t.number, t.boolean, t.null], 'string | number | boolean | null');
export type OutputFieldValue = t.TypeOf<typeof OutputFieldValue>;

const NonEmptyString = t.refinement(t.string, (s) => s.trim().length > 0, 'a non-empty string');

/** Optional fields: absent in old sidekicks' payloads; a `null` is read as absent. */
const optional = <C extends t.Mixed>(codec: C) => t.union([codec, t.null, t.undefined], codec.name);

/**
 * The Falco payload as Falcosidekick POSTs it (shared/PROTOCOLS.md sections 3 and 4).
 * Extra keys are tolerated: newer Falco versions add them; a `__proto__` key anywhere is refused before the rest is
 * read, since the intersection's merge would make it the alert's prototype (lib/decode.ts).
 */
export const FalcoAlert = withoutPrototypeKeys(t.intersection(
  [
    t.type({
      output: t.string,
      priority: PriorityCodec,
      rule: NonEmptyString,
      time: NonEmptyString,
      output_fields: t.record(t.string, OutputFieldValue, 'an object of field values'),
    }),
    t.partial({
      uuid: optional(t.string),
      source: optional(t.string),
      tags: optional(t.array(t.string, 'a list of strings')),
      hostname: optional(t.string),
    }),
  ],
  'FalcoAlert',
));
export type FalcoAlert = t.TypeOf<typeof FalcoAlert>;

/** The rule Falcosidekick sends when asked for a test event; it bypasses minimumpriority. */
export const SIDEKICK_TEST_RULE = 'Test rule';

/** A field as text, as Falco Talon reads them: numbers become their decimal form, null and booleans stay out. */
export function fieldAsString(alert: FalcoAlert, field: string): string | undefined {
  const value = Object.prototype.hasOwnProperty.call(alert.output_fields, field) ? alert.output_fields[field] : undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}
