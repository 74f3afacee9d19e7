import { describeValue } from './decode';
import { sha256 } from './hash';
import { isLabelValue, isQualifiedName } from './names';
import { textCodec } from './params';

/** Kubernetes caps a label value at 63 characters. */
export const MAX_LABEL_VALUE = 63;

/** Hex digits of the hash that keeps two changed or cut texts apart: 8 give 2^32 values. */
const HASH_LENGTH = 8;

/**
 * Labels that controllers set and select on: changing or removing one takes the pod away from its workload, which
 * then starts a replacement (and an attacker's pod walks free of the quarantine). An action refuses to be
 * configured with them.
 */
export const CONTROLLER_LABEL_KEYS: readonly string[] = [
  'pod-template-hash',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'controller-uid',
  'job-name',
  'batch.kubernetes.io/controller-uid',
  'batch.kubernetes.io/job-name',
  'batch.kubernetes.io/job-completion-index',
];

/** A label value made from free text, or why none could be made. */
export type DerivedLabelValue =
  | { readonly ok: true; readonly value: string; readonly changed: boolean }
  | { readonly ok: false; readonly reason: string };

/** The first hex digits of the SHA-256 of the text's UTF-8 bytes: `shortHash('x')` is always the same 8 digits. */
export function shortHash(text: string): string {
  return sha256(text, 'hex').slice(0, HASH_LENGTH);
}

const isAlphanumeric = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/**
 * `text` without what is not an ASCII letter or digit at either end. A loop from each end, not
 * `/[^A-Za-z0-9]+$/`: a backtracking engine tries that from every character of a long run that a letter ends, which
 * is quadratic (a 60,000-character rule blocked the event loop for 10 s).
 */
function trimToAlphanumeric(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && !isAlphanumeric(text.charCodeAt(start))) start++;
  while (end > start && !isAlphanumeric(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

/**
 * Turns free text (a rule name, a priority) into a label value, deterministically. A valid value is kept as it is;
 * otherwise every run of characters a label value cannot hold becomes one `-`, the ends are trimmed to a letter or
 * digit, the rest is cut to leave room, and `-<8 hex digits of the SHA-256 of the original>` is appended, so that two
 * texts that clean up alike ("a b", "a/b") still give distinct values. Text with no letter or digit to keep gives
 * no value: `labelValueFrom('Terminal shell')` is `Terminal-shell-` and a hash; `labelValueFrom('../')` fails.
 */
export function labelValueFrom(text: string): DerivedLabelValue {
  if (text !== '' && isLabelValue(text)) return { ok: true, value: text, changed: false };
  // One pass: each run is matched once, and a character that may stay fails the class at once.
  const kept = trimToAlphanumeric(text.replace(/[^A-Za-z0-9_.-]+/g, '-'));
  if (kept === '') {
    return { ok: false, reason: `${describeValue(text)} holds no ASCII letter or digit to make a label value from` };
  }
  const room = MAX_LABEL_VALUE - 1 - HASH_LENGTH;
  const head = trimToAlphanumeric(kept.slice(0, room));
  return { ok: true, value: `${head}-${shortHash(text)}`, changed: true };
}

/**
 * What a label key an operator configures must be, when `key` is not that: a qualified name that no controller sets
 * or selects on. Reads after "expected"; `undefined` when the key is fine.
 */
export function labelKeyExpectation(key: string): string | undefined {
  if (!isQualifiedName(key)) {
    return "a label key: an optional DNS subdomain prefix and '/', then 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  }
  if (CONTROLLER_LABEL_KEYS.includes(key)) {
    return `a label key that no controller sets or selects on (${describeValue(key)} is one)`;
  }
  return undefined;
}

/** The text of an environment variable as a label key, e.g. `falco-response.io/quarantine`. */
export const labelKeyText = textCodec<string>(
  (s) => {
    const key = s.trim();
    const expected = labelKeyExpectation(key);
    return expected === undefined ? { value: key } : { expected };
  },
  (s) => s,
);
