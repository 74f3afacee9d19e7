import * as t from 'io-ts';
import { isLeft } from 'fp-ts/Either';
import { printable } from './text';

/** A decode failure as an operator reads it: the path inside the input, what was expected and what came. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

const MAX_SHOWN_VALUE = 80;
const MAX_PROBLEMS = 5;

/** Cuts text for a message without splitting a surrogate pair. */
function shorten(text: string, max: number): string {
  const end = /[\ud800-\udbff]/.test(text.charAt(max - 1)) ? max - 1 : max;
  return `${text.slice(0, end)}… (${text.length} characters)`;
}

/** Quotes a received value for a message, cut short: alert text is attacker-written and may be huge. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = printable(JSON.stringify(value) ?? `a ${typeof value}`);
  } catch {
    text = `an unprintable ${typeof value}`; // cycles, BigInt, nesting deeper than the stack
  }
  return text.length > MAX_SHOWN_VALUE ? shorten(text, MAX_SHOWN_VALUE) : text;
}

/** An object key for a path: quoted, escaped and cut short like a value, since keys are attacker-written too. */
function quoteKey(key: string): string {
  return key.length > MAX_SHOWN_VALUE ? `${printable(JSON.stringify(key.slice(0, MAX_SHOWN_VALUE)))}… (${key.length} characters)` : printable(JSON.stringify(key));
}

function isTransparent(type: t.Decoder<unknown, unknown>): boolean {
  // Unions and intersections add index keys ("0", "1") to the context that mean nothing to a reader.
  return type instanceof t.UnionType || type instanceof t.IntersectionType || type instanceof t.RefinementType;
}

/** Renders a context path such as `output_fields["k8s.pod.name"]` or `tags[2]`. */
export function pathOf(context: t.Context): string {
  let path = '';
  for (let i = 1; i < context.length; i++) {
    const parent = context[i - 1].type;
    const key = context[i].key;
    if (isTransparent(parent)) continue;
    if (parent instanceof t.ArrayType) path += `[${key}]`;
    else if (key.length <= MAX_SHOWN_VALUE && /^[A-Za-z_$][\w$]*$/.test(key)) path += path === '' ? key : `.${key}`;
    else path += `[${quoteKey(key)}]`;
  }
  return path === '' ? '(the whole value)' : path;
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
