import * as t from 'io-ts';
import { isLeft } from 'fp-ts/Either';
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

function isTransparent(type: t.Decoder<unknown, unknown>): boolean {
  // Unions and intersections add index keys ("0", "1") to the context that mean nothing to a reader.
  return type instanceof t.UnionType || type instanceof t.IntersectionType || type instanceof t.RefinementType;
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
 * Renders a context path such as `output_fields["k8s.pod.name"]` or `tags[2]`. A path deeper than anything we read
 * (an extra key nested as deep as the body allows) is cut in its middle: it would otherwise be as long as the body.
 */
export function pathOf(context: t.Context): string {
  let path = '';
  for (let i = 1; i < context.length; i++) {
    const parent = context[i - 1].type;
    if (isTransparent(parent)) continue;
    path = pathStep(path, context[i].key, parent instanceof t.ArrayType);
  }
  if (path === '') return '(the whole value)';
  if (path.length <= MAX_SHOWN_PATH) return path;
  // printable: a cut may split a surrogate pair of an unescaped key, whose halves it escapes.
  return printable(`${path.slice(0, MAX_SHOWN_PATH / 2)}…(a path of ${path.length} characters)…${path.slice(-MAX_SHOWN_PATH / 2)}`);
}

/**
 * The one key JSON.parse keeps as an ordinary key but assignment does not: `copy['__proto__'] = v` replaces the
 * copy's prototype. io-ts builds new objects by assignment (intersections merge their members' results key by key,
 * records copy), so a body holding it could lend the decoded alert fields it never had, unvalidated.
 * `constructor` and `prototype` are plain keys to assignment, and nothing here merges objects deeply: they stay.
 */
export const PROTOTYPE_KEY = '__proto__';

const PROTOTYPE_KEY_EXPECTED = `no key named ${PROTOTYPE_KEY} (copying the object would make its value the prototype)`;

/** A value met by the walk, with the way back to the root (contexts are built only for what is reported). */
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

/** A list, as far as pathOf is concerned: its keys are indexes. */
const LIST = t.array(t.unknown);
const typeOfValue = (value: unknown): t.Decoder<unknown, unknown> => (Array.isArray(value) ? LIST : t.unknown);

/** The decoding context of a visit, so that reportErrors names its path as it names any other. */
function contextOf(visit: Visit, c: t.Context): t.Context {
  const steps: t.ContextEntry[] = [];
  let root = visit;
  for (; root.parent !== undefined; root = root.parent) steps.push({ key: root.key, type: typeOfValue(root.value), actual: root.value });
  const top = c[c.length - 1];
  return [...c.slice(0, -1), { ...top, type: typeOfValue(root.value) }, ...steps.reverse()];
}

/**
 * The codec, refusing first any `__proto__` key anywhere in the input (linear in the input):
 * `output_fields.__proto__: expected an object without a key named __proto__ (…), got {"k8s.pod.name":"x"}`.
 */
export function withoutPrototypeKeys<A, O>(codec: t.Type<A, O, unknown>): t.Type<A, O, unknown> {
  return new t.Type<A, O, unknown>(
    codec.name,
    codec.is,
    (u, c) => {
      const { first, count } = findPrototypeKeys(u, MAX_PROBLEMS);
      // As the codec itself, so that paths read `tags[0]` and not `0.tags[0]`.
      if (count === 0) return codec.validate(u, [...c.slice(0, -1), { ...c[c.length - 1], type: codec }]);
      const errors: t.ValidationError[] = first.map((visit) => ({ value: visit.value, context: contextOf(visit, c), message: PROTOTYPE_KEY_EXPECTED }));
      // The others are only counted ("and 3 more problem(s)"): a path each would cost their depth each.
      for (let i = first.length; i < count; i++) errors.push({ value: null, context: [...c, { key: `#${i}`, type: t.never }], message: PROTOTYPE_KEY_EXPECTED });
      return t.failures(errors);
    },
    codec.encode,
  );
}

/** The name of the type at the path's last key: a union's own name rather than that of its last member. */
function expectedAt(context: t.Context): string {
  let type = context[0]?.type;
  for (let i = 1; i < context.length; i++) {
    if (!isTransparent(context[i - 1].type)) type = context[i].type;
  }
  return type?.name ?? 'a valid value';
}

/** One line per failing path: `priority: expected one of Debug, …, got "loud"`. */
export function reportErrors(errors: t.Errors): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const error of errors) {
    const path = pathOf(error.context);
    if (seen.has(path)) continue; // a union reports each member's failure on the same path
    seen.add(path);
    const expected = error.message ?? expectedAt(error.context);
    lines.push(
      error.value === undefined ? `${path}: required, but missing` : `${path}: expected ${expected}, got ${describeValue(error.value)}`,
    );
    if (lines.length === MAX_PROBLEMS) break;
  }
  const more = new Set(errors.map((e) => pathOf(e.context))).size - lines.length;
  if (more > 0) lines.push(`and ${more} more problem(s)`);
  return lines;
}

/** Decodes or throws an InvalidInputError whose message names every failing path. */
export function decodeOrThrow<A, I>(codec: t.Decoder<I, A>, input: I, what?: string): A {
  const result = codec.decode(input);
  if (isLeft(result)) {
    const problems = reportErrors(result.left);
    throw new InvalidInputError(what === undefined ? problems : problems.map((p) => `${what}: ${p}`));
  }
  return result.right;
}
