import { strict as assert } from 'assert';
import { InvalidInputError } from '../../lib/decode';

/** The message of the InvalidInputError `fn` throws (the operator's exact text); fails if it throws nothing else. */
export function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InvalidInputError, `threw ${String(error)}`);
    return error.message;
  }
  assert.fail('no error');
}
