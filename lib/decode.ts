import * as E from 'fp-ts/Either';
import * as DE from 'io-ts/DecodeError';
import * as D from 'io-ts/Decoder';
import * as FS from 'io-ts/FreeSemigroup';
import { clipped, printable } from './text';

/** A decode failure as an operator reads it: the path inside the input, what was expected and what came. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

const MAX_SHOWN_VALUE = 80;
const MAX_PROBLEMS = 5;

/** Quotes a received value for a message, cut short: alert text is attacker-written and may be huge. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = printable(JSON.stringify(value) ?? `a ${typeof value}`);
  } catch {
    text = `an unprintable ${typeof value}`; // cycles, BigInt, nesting deeper than the stack
  }
  return clipped(text, MAX_SHOWN_VALUE);
}

/** An object key for a path: quoted, escaped and cut short like a value, since keys are attacker-written too. */
function quoteKey(key: string): string {
  return key.length > MAX_SHOWN_VALUE ? `${printable(JSON.stringify(key.slice(0, MAX_SHOWN_VALUE)))}… (${key.length} characters)` : printable(JSON.stringify(key));
}

/** One step of a path: `[2]` in a list, `.name` or `["k8s.pod.name"]` in an object. */
function pathStep(path: string, key: string, inList: boolean): string {
  if (inList) return `${path}[${key}]`;
  if (key.length <= MAX_SHOWN_VALUE && /^[A-Za-z_$][\w$]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${quoteKey(key)}]`;
}

/** The most characters of a path shown: its start and its end, each half of it. */
const MAX_SHOWN_PATH = 240;

/**
 * A path as shown, such as `output_fields["k8s.pod.name"]` or `tags[2]`. A path deeper than anything we read (an
 * extra key nested as deep as the body allows) is cut in its middle: it would otherwise be as long as the body.
 */
function shownPath(path: string): string {
  if (path === '') return '(the whole value)';
  if (path.length <= MAX_SHOWN_PATH) return path;
  // printable: a cut may split a surrogate pair of an unescaped key, whose halves it escapes.
  return printable(`${path.slice(0, MAX_SHOWN_PATH / 2)}…(a path of ${path.length} characters)…${path.slice(-MAX_SHOWN_PATH / 2)}`);
}

/**
 * The one key JSON.parse keeps as an ordinary key but assignment does not: `copy['__proto__'] = v` replaces the
 * copy's prototype. The combinators below copy without assignment, but io-ts's own and any later copy of an alert's
 * fields assign, and the copy would then lend the alert fields it never had, unvalidated: it is refused first.
 * `constructor` and `prototype` are plain keys to assignment, and nothing here merges objects deeply: they stay.
 */
export const PROTOTYPE_KEY = '__proto__';

const PROTOTYPE_KEY_EXPECTED = `no key named ${PROTOTYPE_KEY} (copying the object would make its value the prototype)`;

/** A value met by the walk, with the way back to the root (paths are built only for what is reported). */
interface Visit {
  readonly value: unknown;
  readonly key: string;
  readonly inList: boolean;
  readonly parent: Visit | undefined;
}

/**
 * Finds `__proto__` keys in a parsed JSON value, at any depth, in the order of the text: one pass with its own
 * stack (no recursion, so no nesting overflows it), each value visited once. Counts them all, keeps the first `keep`.
 */
function findPrototypeKeys(root: unknown, keep: number): { readonly first: Visit[]; readonly count: number } {
  const first: Visit[] = [];
  let count = 0;
  const stack: Visit[] = [{ value: root, key: '', inList: false, parent: undefined }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    if (!visit.inList && visit.key === PROTOTYPE_KEY && visit.parent !== undefined) {
      if (count++ < keep) first.push(visit);
      continue;
    }
    const value = visit.value;
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i] as unknown, key: String(i), inList: true, parent: visit });
    } else {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: (value as Record<string, unknown>)[keys[i]], key: keys[i], inList: false, parent: visit });
      }
    }
  }
  return { first, count };
}

/** The error of a visit: the keys from the root down to it, as the decoders' own errors name a path. */
function errorAt(visit: Visit, leaf: D.DecodeError): D.DecodeError {
  let error = leaf;
  for (let at = visit; at.parent !== undefined; at = at.parent) {
    error = FS.of(at.inList ? DE.index(Number(at.key), DE.optional, error) : DE.key(at.key, DE.optional, error));
  }
  return error;
}

/**
 * The decoder, refusing first any `__proto__` key anywhere in the input (linear in the input):
 * `output_fields.__proto__: expected no key named __proto__ (…), got {"k8s.pod.name":"x"}`.
 */
export function withoutPrototypeKeys<A>(decoder: D.Decoder<unknown, A>): D.Decoder<unknown, A> {
  return {
    decode: (u) => {
      const { first, count } = findPrototypeKeys(u, MAX_PROBLEMS);
      if (count === 0) return decoder.decode(u);
      const errors = first.map((visit) => errorAt(visit, FS.of(DE.leaf(visit.value, PROTOTYPE_KEY_EXPECTED))));
      // The others are only counted ("and 3 more problem(s)"): a path each would cost their depth each.
      for (let i = first.length; i < count; i++) errors.push(FS.of(DE.key(`#${i}`, DE.optional, FS.of(DE.leaf(null, PROTOTYPE_KEY_EXPECTED)))));
      return E.left(errors.reduce(FS.concat));
    },
  };
}

// The combinators every decoder of the project is made of, on io-ts/Decoder. A failure names what was expected as
// an operator reads it ("a Pod", "a list of routes"), never a type's internal name.

/**
 * `decoder`, its failures at this place of the input all saying `expected`: `named('a Falco priority', …)`. Failures
 * inside it (a key of an object, an item of a list) keep their own.
 */
export function named<I, A>(expected: string, decoder: D.Decoder<I, A>): D.Decoder<I, A> {
  return D.withMessage<I>(() => expected)(decoder);
}

/** `base`, and `holds` true of its value: `refined(D.string, (s) => s.trim() !== '', 'a non-empty string')`. */
export function refined<I, A>(base: D.Decoder<I, A>, holds: (value: A) => boolean, expected: string): D.Decoder<I, A> {
  return {
    decode: (i) => {
      const result = base.decode(i);
      if (E.isLeft(result)) return E.left(FS.of(DE.wrap(expected, result.left)));
      return holds(result.right) ? result : D.failure(result.right, expected);
    },
  };
}

type Literal = string | number | boolean | null;

/**
 * One of `values`, compared with `===`: `literal('v1')` fails saying `"v1"`, as io-ts's own does. Its own, since
 * io-ts's D.literal reaches every guard of io-ts/Guard through a namespace object, which no bundler can shake.
 */
export function literal<A extends readonly [Literal, ...Literal[]]>(...values: A): D.Decoder<unknown, A[number]> {
  return D.fromRefinement((u: unknown): u is A[number] => values.includes(u as Literal), values.map((v) => JSON.stringify(v)).join(' | '));
}

/** The value or null, `expected` naming both, for an optional key (absent, or undefined, is no value to decode). */
export function nullable<A>(expected: string, decoder: D.Decoder<unknown, A>): D.Decoder<unknown, A | null> {
  return named(expected, D.union(decoder, literal(null)));
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u);

// list, record and object walk their input themselves, where io-ts's fromArray, fromRecord and fromStruct go
// through fp-ts's Apply (closures and an Either per key): decoding an alert took three times as long. The errors are
// the same DecodeError nodes io-ts makes; the value is the input itself unless a decoder changed a part of it.

/** The errors of the parts, as one; undefined when none failed. */
const joined = (errors: readonly D.DecodeError[]): D.DecodeError | undefined => (errors.length === 0 ? undefined : errors.reduce(FS.concat));

/** A list whose every item `item` takes, e.g. `list(D.string, 'a list of strings')`. */
export function list<A>(item: D.Decoder<unknown, A>, expected = 'a list'): D.Decoder<unknown, A[]> {
  return {
    decode: (u) => {
      if (!Array.isArray(u)) return D.failure(u, expected);
      const errors: D.DecodeError[] = [];
      let out: unknown[] = u;
      for (let i = 0; i < u.length; i++) {
        const result = item.decode(u[i]);
        if (E.isLeft(result)) errors.push(FS.of(DE.index(i, DE.optional, result.left)));
        else if (result.right !== u[i]) {
          if (out === u) out = u.slice() as unknown[];
          out[i] = result.right;
        }
      }
      const error = joined(errors);
      return error === undefined ? D.success(out as A[]) : E.left(error);
    },
  };
}

/** An object whose every value `value` takes (and every key `key`, given one): labels, Falco's output fields. */
export function record<A>(value: D.Decoder<unknown, A>, expected = 'an object', key?: D.Decoder<string, string>): D.Decoder<unknown, Record<string, A>> {
  return {
    decode: (u) => {
      if (!isObject(u)) return D.failure(u, expected);
      const errors: D.DecodeError[] = [];
      let out = u;
      for (const k of Object.keys(u)) {
        const checkedKey = key?.decode(k);
        if (checkedKey !== undefined && E.isLeft(checkedKey)) errors.push(FS.of(DE.key(k, DE.optional, checkedKey.left)));
        const result = value.decode(u[k]);
        if (E.isLeft(result)) errors.push(FS.of(DE.key(k, DE.optional, result.left)));
        else if (result.right !== u[k]) {
          if (out === u) out = { ...u };
          // Defined, not assigned: the key is the input's, and assigning to `__proto__` would set the prototype.
          Object.defineProperty(out, k, { value: result.right, writable: true, enumerable: true, configurable: true });
        }
      }
      const error = joined(errors);
      return error === undefined ? D.success(out as Record<string, A>) : E.left(error);
    },
  };
}

export type Props = Record<string, D.Decoder<unknown, unknown>>;
export type ObjectOf<R extends Props, O extends Props> = { [K in keyof R]: D.TypeOf<R[K]> } & { [K in keyof O]?: D.TypeOf<O[K]> };

/**
 * An object with the `required` keys and, when present (and not undefined), the `optional` ones. The value is the
 * input itself, every other key kept, with what the decoders changed: an API server's answer stays as it was sent.
 */
export function object<R extends Props, O extends Props = Record<never, never>>(
  required: R,
  optional?: O,
  expected = 'an object',
): D.Decoder<unknown, ObjectOf<R, O>> {
  const keys = [
    ...Object.entries(required).map(([k, decoder]) => ({ k, decoder, kind: DE.required })),
    ...Object.entries(optional ?? {}).map(([k, decoder]) => ({ k, decoder, kind: DE.optional })),
  ];
  return {
    decode: (u) => {
      if (!isObject(u)) return D.failure(u, expected);
      const errors: D.DecodeError[] = [];
      let out = u;
      for (const { k, decoder, kind } of keys) {
        const given = u[k];
        if (given === undefined && kind === DE.optional) continue;
        const result = decoder.decode(given);
        if (E.isLeft(result)) errors.push(FS.of(DE.key(k, kind, result.left)));
        else if (result.right !== given) {
          // Spread, not assignment: an own `__proto__` key of the input stays an own key of the copy.
          if (out === u) out = { ...u };
          out[k] = result.right;
        }
      }
      const error = joined(errors);
      return error === undefined ? D.success(out as ObjectOf<R, O>) : E.left(error);
    },
  };
}

/** One failure: where, what came, and what was expected there. */
interface Problem {
  readonly path: string;
  readonly actual: unknown;
  readonly expected: string;
}

/**
 * The failures of a decode, in the order of the input, each with its path and the outermost name given at that
 * place (a union's, a refinement's), else the failure's own. One pass with its own stack: an object with thousands of
 * failing keys makes a chain of as many concatenations.
 */
function problemsOf(error: D.DecodeError): Problem[] {
  type Frame = { readonly node: D.DecodeError | DE.DecodeError<string>; readonly path: string; readonly name: string | undefined };
  const problems: Problem[] = [];
  const stack: Frame[] = [{ node: error, path: '', name: undefined }];
  while (stack.length > 0) {
    const { node, path, name } = stack.pop()!;
    switch (node._tag) {
      case 'Of':
        stack.push({ node: node.value, path, name });
        break;
      case 'Concat':
        stack.push({ node: node.right, path, name }, { node: node.left, path, name });
        break;
      case 'Key':
        stack.push({ node: node.errors, path: pathStep(path, node.key, false), name: undefined });
        break;
      case 'Index':
        stack.push({ node: node.errors, path: pathStep(path, String(node.index), true), name: undefined });
        break;
      case 'Member':
      case 'Lazy':
        stack.push({ node: node.errors, path, name });
        break;
      case 'Wrap':
        stack.push({ node: node.errors, path, name: name ?? node.error });
        break;
      case 'Leaf':
        problems.push({ path: shownPath(path), actual: node.actual, expected: name ?? node.error });
        break;
    }
  }
  return problems;
}

/** What the first failure expected: `a whole number from 0 to 3600`. */
export function firstExpected(error: D.DecodeError): string | undefined {
  return problemsOf(error)[0]?.expected;
}

/** One line per failing path: `priority: expected one of Debug, …, got "loud"`. */
export function reportErrors(error: D.DecodeError): string[] {
  const problems = problemsOf(error);
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const problem of problems) {
    if (seen.has(problem.path)) continue; // a union reports each member's failure on the same path
    seen.add(problem.path);
    lines.push(
      problem.actual === undefined
        ? `${problem.path}: required, but missing`
        : `${problem.path}: expected ${problem.expected}, got ${describeValue(problem.actual)}`,
    );
    if (lines.length === MAX_PROBLEMS) break;
  }
  const more = new Set(problems.map((p) => p.path)).size - lines.length;
  if (more > 0) lines.push(`and ${more} more problem(s)`);
  return lines;
}

/** Decodes or throws an InvalidInputError whose message names every failing path. */
export function decodeOrThrow<I, A>(decoder: D.Decoder<I, A>, input: I, what?: string): A {
  const result = decoder.decode(input);
  if (E.isLeft(result)) {
    const problems = reportErrors(result.left);
    throw new InvalidInputError(what === undefined ? problems : problems.map((p) => `${what}: ${p}`));
  }
  return result.right;
}
