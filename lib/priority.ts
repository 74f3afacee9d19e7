import * as D from 'io-ts/Decoder';

/** Falco priorities from the least to the most severe (shared/PROTOCOLS.md section 3). */
export const PRIORITIES = ['Debug', 'Informational', 'Notice', 'Warning', 'Error', 'Critical', 'Alert', 'Emergency'] as const;
export type Priority = (typeof PRIORITIES)[number];

const byLowerCase = new Map<string, Priority>(PRIORITIES.map((p) => [p.toLowerCase(), p]));
byLowerCase.set('info', 'Informational');

/** Falcosidekick reads priorities case-insensitively and takes `info` for Informational; so do we. */
export const PriorityCodec: D.Decoder<unknown, Priority> = {
  decode: (u) => {
    const found = typeof u === 'string' ? byLowerCase.get(u.trim().toLowerCase()) : undefined;
    return found === undefined ? D.failure(u, `one of ${PRIORITIES.join(', ')} (any case)`) : D.success(found);
  },
};

/** `atLeast('Warning', 'Error')` is true: compares by severity. */
export function atLeast(priority: Priority, minimum: Priority): boolean {
  return PRIORITIES.indexOf(priority) >= PRIORITIES.indexOf(minimum);
}
