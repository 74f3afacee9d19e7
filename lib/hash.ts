import { createHash } from 'crypto';

/** What sha256 hashes: text (as UTF-8), bytes, or parts of either hashed one after the other. */
export type Hashed = string | Buffer | readonly (string | Buffer)[];

/**
 * The SHA-256 of `data`: `sha256('x', 'hex')` is 64 hex digits, `sha256([prefix, body], 'base64')` hashes both in
 * turn; without an encoding, the 32 bytes.
 */
export function sha256(data: Hashed, encoding: 'hex' | 'base64'): string;
export function sha256(data: Hashed): Buffer;
export function sha256(data: Hashed, encoding?: 'hex' | 'base64'): string | Buffer {
  const hash = createHash('sha256');
  for (const part of typeof data === 'string' || Buffer.isBuffer(data) ? [data] : data) {
    if (typeof part === 'string') hash.update(part, 'utf8');
    else hash.update(part);
  }
  return encoding === undefined ? hash.digest() : hash.digest(encoding);
}
