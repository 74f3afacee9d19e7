import * as t from 'io-ts';

/** Falco priorities from the least to the most severe (shared/PROTOCOLS.md section 3). */
export const PRIORITIES = ['Debug', 'Informational', 'Notice', 'Warning', 'Error', 'Critical', 'Alert', 'Emergency'] as const;
export type Priority = (typeof PRIORITIES)[number];

const byLowerCase = new Map<string, Priority>(PRIORITIES.map((p) => [p.toLowerCase(), p]));
byLowerCase.set('info', 'Informational');

/** Falcosidekick reads priorities case-insensitively and takes `info` for Informational; so do we. */
export const PriorityCodec = new t.Type<Priority, string, unknown>(
  'Priority',
  (u): u is Priority => typeof u === 'string' && (PRIORITIES as readonly string[]).includes(u),
  (u, c) => {
    const found = typeof u === 'string' ? byLowerCase.get(u.trim().toLowerCase()) : undefined;
    return found === undefined ? t.failure(u, c, `one of ${PRIORITIES.join(', ')} (any case)`) : t.success(found);
  },
  (p) => p,
);

/** `atLeast('Warning', 'Error')` is true: compares by severity. */
export function atLeast(priority: Priority, minimum: Priority): boolean {
  return PRIORITIES.indexOf(priority) >= PRIORITIES.indexOf(minimum);
}
