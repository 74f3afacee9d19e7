import * as D from 'io-ts/Decoder';
import { list, nullable, object, record, refined, withoutPrototypeKeys } from './decode';
import { PriorityCodec } from './priority';

/** Falco sends strings, numbers (pids, uids, ports), booleans and null (unknown) as field values. */
export const OutputFieldValue = D.fromRefinement(
  (u: unknown): u is string | number | boolean | null => u === null || typeof u === 'string' || typeof u === 'number' || typeof u === 'boolean',
  'string | number | boolean | null',
);
export type OutputFieldValue = D.TypeOf<typeof OutputFieldValue>;

const NonEmptyString = refined(D.string, (s) => s.trim().length > 0, 'a non-empty string');

/**
 * The Falco payload as Falcosidekick POSTs it (shared/PROTOCOLS.md sections 3 and 4).
 * Extra keys are tolerated: newer Falco versions add them; a `__proto__` key anywhere is refused before the rest is
 * read, since a copy made by assignment would make it the prototype (lib/decode.ts). Optional fields are absent in
 * old sidekicks' payloads; a `null` is read as absent.
 */
export const FalcoAlert = withoutPrototypeKeys(
  object(
    {
      output: D.string,
      priority: PriorityCodec,
      rule: NonEmptyString,
      time: NonEmptyString,
      output_fields: record(OutputFieldValue, 'an object of field values'),
    },
    {
      uuid: nullable('string', D.string),
      source: nullable('string', D.string),
      tags: nullable('a list of strings', list(D.string, 'a list of strings')),
      hostname: nullable('string', D.string),
    },
    'FalcoAlert',
  ),
);
export type FalcoAlert = D.TypeOf<typeof FalcoAlert>;

/** The rule Falcosidekick sends when asked for a test event; it bypasses minimumpriority. */
export const SIDEKICK_TEST_RULE = 'Test rule';

/**
 * The event source of Kubernetes audit alerts: Falco names it `k8s_audit` (the k8saudit plugin's source, and the
 * legacy built-in one before it). `k8saudit`, the plugin's name, is accepted too: earlier versions of this project
 * expected it, and routing tables or tools written for them may send it.
 */
export const AUDIT_SOURCES: readonly string[] = ['k8s_audit', 'k8saudit'];

export function isAuditAlert(alert: FalcoAlert): boolean {
  return typeof alert.source === 'string' && AUDIT_SOURCES.includes(alert.source);
}

/** Falco prints `<NA>` for a field it could not fill in older versions; from 0.41 it sends null. Both mean unknown. */
const UNKNOWN = '<NA>';

/**
 * The first of `fields` that holds a known value (not absent, null, empty or `<NA>`), as text:
 * `knownField(alert, ['k8s.pod.name', 'k8smeta.pod.name'])` reads the container plugin's field, or the k8smeta
 * plugin's when Falco has only that one.
 */
export function knownField(alert: FalcoAlert, fields: readonly string[]): { readonly field: string; readonly value: string } | undefined {
  for (const field of fields) {
    const value = fieldAsString(alert, field);
    if (value !== undefined && value !== '' && value !== UNKNOWN) return { field, value };
  }
  return undefined;
}

/** A field as text, as Falco Talon reads them: numbers become their decimal form, null and booleans stay out. */
export function fieldAsString(alert: FalcoAlert, field: string): string | undefined {
  const value = Object.prototype.hasOwnProperty.call(alert.output_fields, field) ? alert.output_fields[field] : undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}
