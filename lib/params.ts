import * as t from 'io-ts';
import { isLeft } from 'fp-ts/Either';
import { describeValue, reportErrors } from './decode';
import { ConfigurationError } from './errors';
import { isNamespaceName } from './names';
import { PRIORITIES, PriorityCodec, type Priority } from './priority';

/**
 * One parameter of an action, read from an environment variable of the Function's pod. The codec turns the
 * variable's text into the value; `defaultValue` is text too, so the generated manifest can show it verbatim.
 */
export interface Param<A> {
  readonly env: string;
  readonly codec: t.Type<A, string, string>;
  readonly defaultValue: string;
  readonly description: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ParamSpecs = Record<string, Param<any>>;
export type ParamValues<P extends ParamSpecs> = { readonly [K in keyof P]: P[K] extends Param<infer A> ? A : never };

/** Declares a parameter: `param('GRACE_PERIOD_SECONDS', integerText(0, 3600), '0', 'seconds given to the pod')`. */
export function param<A>(env: string, codec: t.Type<A, string, string>, defaultValue: string, description: string): Param<A> {
  return { env, codec, defaultValue, description };
}

// lib/kube throws it too, and must not import this module (eslint.config.mjs): it lives in lib/errors.ts.
export { ConfigurationError };

/** Reads every parameter from `env`, falling back to its default; throws ConfigurationError listing all problems. */
export function readParams<P extends ParamSpecs>(specs: P, env: Readonly<Record<string, string | undefined>>): ParamValues<P> {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    const raw = env[spec.env] ?? spec.defaultValue;
    const decoded = spec.codec.decode(raw);
    if (isLeft(decoded)) {
      problems.push(`${spec.env}: expected ${expectedOf(decoded.left, spec.codec.name)}, got ${describeValue(raw)}`);
    } else {
      values[key] = decoded.right;
    }
  }
  if (problems.length > 0) throw new ConfigurationError(problems);
  return values as ParamValues<P>;
}

function expectedOf(errors: t.Errors, fallback: string): string {
  const message = errors.find((e) => e.message !== undefined)?.message;
  return message ?? reportErrors(errors)[0] ?? fallback;
}

// Codecs from the text of an environment variable to a value.

/** The items of a comma-separated setting, trimmed, blanks dropped: `commaList(' a, ,b ')` is `['a', 'b']`. */
export function commaList(text: string): string[] {
  return text.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

/** `true` or `false`, any case. */
export const booleanText = new t.Type<boolean, string, string>(
  'true or false',
  (u): u is boolean => typeof u === 'boolean',
  (s, c) => {
    const v = s.trim().toLowerCase();
    return v === 'true' ? t.success(true) : v === 'false' ? t.success(false) : t.failure(s, c, 'true or false');
  },
  (b) => String(b),
);

/** A whole number within bounds, e.g. `integerText(0, 3600)`. */
export function integerText(min: number, max: number): t.Type<number, string, string> {
  const expected = `a whole number from ${min} to ${max}`;
  return new t.Type<number, string, string>(
    expected,
    (u): u is number => typeof u === 'number',
    (s, c) => {
      const n = /^\s*-?\d+\s*$/.test(s) ? Number(s) : NaN;
      // `+ 0` turns "-0" into 0: a setting must read back the same from the text it is shown as ("0").
      return Number.isInteger(n) && n >= min && n <= max ? t.success(n + 0) : t.failure(s, c, expected);
    },
    (n) => String(n),
  );
}

/**
 * A comma-separated list whose every item satisfies `check`; blanks around items are ignored. A type guard makes a
 * list of what it guards: `listText('namespace names', isNamespaceName)` reads `readonly NamespaceName[]`.
 */
export function listText<A extends string>(itemDescription: string, check: (item: string) => item is A): t.Type<readonly A[], string, string>;
export function listText(itemDescription: string, check: (item: string) => boolean): t.Type<readonly string[], string, string>;
export function listText(itemDescription: string, check: (item: string) => boolean): t.Type<readonly string[], string, string> {
  const expected = `a comma-separated list of ${itemDescription}`;
  return new t.Type<readonly string[], string, string>(
    expected,
    (u): u is readonly string[] => Array.isArray(u),
    (s, c) => {
      const items = commaList(s);
      const bad = items.find((i) => !check(i));
      return bad === undefined ? t.success(items) : t.failure(s, c, `${expected} (${describeValue(bad)} is not one)`);
    },
    (items) => items.join(','),
  );
}

export const namespaceListText = listText('namespace names', isNamespaceName);

/** A Falco priority, any case. */
export const priorityText: t.Type<Priority, string, string> = new t.Type<Priority, string, string>(
  'a Falco priority',
  PriorityCodec.is,
  (s, c) => {
    const r = PriorityCodec.validate(s, c);
    return isLeft(r) ? t.failure(s, c, `a Falco priority (${PRIORITIES.join(', ')})`) : r;
  },
  (p) => p,
);

/** Free text, taken as it is. */
export const text = new t.Type<string, string, string>('text', t.string.is, (s) => t.success(s), (s) => s);
