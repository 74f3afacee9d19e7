import { isLeft } from 'fp-ts/Either';
import * as C from 'io-ts/Codec';
import * as D from 'io-ts/Decoder';
import { describeValue, firstExpected } from './decode';
import { ConfigurationError } from './errors';
import { isNamespaceName } from './names';
import { PRIORITIES, PriorityCodec, type Priority } from './priority';

/**
 * One parameter of an action, read from an environment variable of the Function's pod. The codec turns the
 * variable's text into the value, and the value back into text; `defaultValue` is text too, so the generated
 * manifest can show it verbatim.
 */
export interface Param<A> {
  readonly env: string;
  readonly codec: TextCodec<A>;
  readonly defaultValue: string;
  readonly description: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ParamSpecs = Record<string, Param<any>>;
export type ParamValues<P extends ParamSpecs> = { readonly [K in keyof P]: P[K] extends Param<infer A> ? A : never };

/** Declares a parameter: `param('GRACE_PERIOD_SECONDS', integerText(0, 3600), '0', 'seconds given to the pod')`. */
export function param<A>(env: string, codec: TextCodec<A>, defaultValue: string, description: string): Param<A> {
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
      problems.push(`${spec.env}: expected ${firstExpected(decoded.left) ?? 'a valid value'}, got ${describeValue(raw)}`);
    } else {
      values[key] = decoded.right;
    }
  }
  if (problems.length > 0) throw new ConfigurationError(problems);
  return values as ParamValues<P>;
}

// Codecs from the text of an environment variable to a value, and back.

/** A setting's codec: from the text of its variable to its value, and back to text that reads the same. */
export type TextCodec<A> = C.Codec<string, string, A>;

/** The codec of `read`, which gives the value or what was expected, and `write`. */
export function textCodec<A>(read: (s: string) => { readonly value: A } | { readonly expected: string }, write: (value: A) => string): TextCodec<A> {
  return C.make(
    {
      decode: (s) => {
        const result = read(s);
        return 'value' in result ? D.success(result.value) : D.failure(s, result.expected);
      },
    },
    { encode: write },
  );
}

/** The items of a comma-separated setting, trimmed, blanks dropped: `commaList(' a, ,b ')` is `['a', 'b']`. */
export function commaList(text: string): string[] {
  return text.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

/** `true` or `false`, any case. */
export const booleanText = textCodec<boolean>(
  (s) => {
    const v = s.trim().toLowerCase();
    return v === 'true' ? { value: true } : v === 'false' ? { value: false } : { expected: 'true or false' };
  },
  (b) => String(b),
);

/** A whole number within bounds, e.g. `integerText(0, 3600)`. */
export function integerText(min: number, max: number): TextCodec<number> {
  const expected = `a whole number from ${min} to ${max}`;
  return textCodec<number>(
    (s) => {
      const n = /^\s*-?\d+\s*$/.test(s) ? Number(s) : NaN;
      // `+ 0` turns "-0" into 0: a setting must read back the same from the text it is shown as ("0").
      return Number.isInteger(n) && n >= min && n <= max ? { value: n + 0 } : { expected };
    },
    (n) => String(n),
  );
}

/**
 * A comma-separated list whose every item satisfies `check`; blanks around items are ignored. A type guard makes a
 * list of what it guards: `listText('namespace names', isNamespaceName)` reads `readonly NamespaceName[]`.
 */
export function listText<A extends string>(itemDescription: string, check: (item: string) => item is A): TextCodec<readonly A[]>;
export function listText(itemDescription: string, check: (item: string) => boolean): TextCodec<readonly string[]>;
export function listText(itemDescription: string, check: (item: string) => boolean): TextCodec<readonly string[]> {
  const expected = `a comma-separated list of ${itemDescription}`;
  return textCodec<readonly string[]>(
    (s) => {
      const items = commaList(s);
      const bad = items.find((i) => !check(i));
      return bad === undefined ? { value: items } : { expected: `${expected} (${describeValue(bad)} is not one)` };
    },
    (items) => items.join(','),
  );
}

export const namespaceListText = listText('namespace names', isNamespaceName);

/** A Falco priority, any case. */
export const priorityText: TextCodec<Priority> = textCodec<Priority>(
  (s) => {
    const r = PriorityCodec.decode(s);
    return isLeft(r) ? { expected: `a Falco priority (${PRIORITIES.join(', ')})` } : { value: r.right };
  },
  (p) => p,
);

/** Free text, taken as it is. */
export const text = textCodec<string>((s) => ({ value: s }), (s) => s);
