import { readFileSync } from 'fs';
import * as path from 'path';
import type { TargetKind } from '../../lib/resolve';
import { FIXTURES } from './fixtures';

export const HOSTILE = path.join(FIXTURES, 'hostile');

/** How a body reaches the handler: parsed by Kubeless (application/json) or handed over as text (any other type). */
export type Delivery = 'json' | 'string';

/** The one answer each input must get: 400 with this exact error, or 200 skipped with this code and reason. */
export type Expected =
  | { readonly status: 400; readonly error: string }
  | {
      readonly status: 200;
      readonly skipped: string;
      readonly reason: string;
      /** A pod action's `{ namespace, pod }`, an audit-object action's `{ resource, namespace?, name }`. */
      readonly target?: Readonly<Record<string, string>>;
    };

/** What an audit-object action answers where it differs from a pod action, with settings of its own. */
interface ForAuditObject {
  readonly env?: Readonly<Record<string, string>>;
  readonly expect: Expected;
}

/** A path segment in a generation spec: a key, or a key made of one text repeated (for huge keys). */
type Segment = string | { readonly repeat: string; readonly times: number };

/** One change a generation spec makes to its base alert; big values are made here, not committed. */
type Change = { readonly path: readonly Segment[] } & (
  | { readonly value: unknown }
  | { readonly repeat: string; readonly times: number }
  | { readonly fields: number; readonly key: string; readonly value: unknown }
  | { readonly items: number; readonly value: unknown }
  | { readonly nest: number }
);

interface IndexEntry {
  readonly file?: string;
  readonly name?: string;
  readonly about: string;
  readonly as: Delivery;
  readonly env?: Readonly<Record<string, string>>;
  readonly generate?: { readonly from: string; readonly set: readonly Change[] };
  readonly expect: Expected;
  readonly auditObject?: ForAuditObject;
}

export interface HostileInput {
  readonly name: string;
  readonly about: string;
  readonly as: Delivery;
  /** The exact bytes of the body, as text. */
  readonly text: string;
  readonly env: Readonly<Record<string, string>>;
  readonly expect: Expected;
  readonly auditObject?: ForAuditObject;
}

const keyOf = (segment: Segment) => (typeof segment === 'string' ? segment : segment.repeat.repeat(segment.times));

/** A value no JSON holds, replaced by deep nesting after stringify: building it as an object would overflow the stack. */
const nestMarker = (depth: number) => `\u0000nest:${depth}\u0000`;

function generate(spec: NonNullable<IndexEntry['generate']>): string {
  const doc = JSON.parse(readFileSync(path.join(FIXTURES, spec.from), 'utf8')) as Record<string, unknown>;
  for (const change of spec.set) {
    const keys = change.path.map(keyOf);
    let parent = doc;
    for (const key of keys.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
    const last = keys[keys.length - 1];
    if ('nest' in change) parent[last] = nestMarker(change.nest);
    else if ('repeat' in change) parent[last] = change.repeat.repeat(change.times);
    else if ('fields' in change) {
      const fields: Record<string, unknown> = {};
      for (let i = 0; i < change.fields; i++) fields[change.key.replace('{i}', String(i))] = change.value;
      parent[last] = fields;
    } else if ('items' in change) parent[last] = new Array<unknown>(change.items).fill(change.value);
    else parent[last] = change.value;
  }
  return JSON.stringify(doc).replace(/"\\u0000nest:(\d+)\\u0000"/g, (_, depth: string) => '['.repeat(Number(depth)) + ']'.repeat(Number(depth)));
}

/** Every input of test/fixtures/hostile/index.json, with generated inputs made. */
export function hostileCorpus(): HostileInput[] {
  const index = JSON.parse(readFileSync(path.join(HOSTILE, 'index.json'), 'utf8')) as { inputs: IndexEntry[] };
  return index.inputs.map((entry) => ({
    name: entry.file ?? entry.name ?? '(unnamed)',
    about: entry.about,
    as: entry.as,
    text: entry.generate !== undefined ? generate(entry.generate) : readFileSync(path.join(HOSTILE, entry.file ?? ''), 'utf8'),
    env: entry.env ?? {},
    expect: entry.expect,
    ...(entry.auditObject === undefined ? {} : { auditObject: entry.auditObject }),
  }));
}

/** What the handler gets as `event.data` (shared/PROTOCOLS.md section 1). */
export function dataOf(input: HostileInput): unknown {
  return input.as === 'json' ? JSON.parse(input.text) : input.text;
}

/**
 * The settings of a corpus run for an action on this kind of target: every rule and every priority, so that rule
 * filtering cannot hide a decoding or a validation answer; inputs that test the filter itself bring their own, and an
 * input may bring its own for an audit-object action.
 */
export function corpusEnv(input: HostileInput, kind: TargetKind = 'pod'): Record<string, string> {
  return { RULES: '*', MINIMUM_PRIORITY: 'Debug', ...input.env, ...(kind === 'audit-object' ? input.auditObject?.env : {}) };
}

/**
 * The one answer an action on this kind of target must give: an audit-object action's where the input says it differs;
 * a pod action's for a node action, which finds its target through the alert's pod too (see expectedAnswer).
 */
export function expectedOf(input: HostileInput, kind: TargetKind = 'pod'): Expected {
  return kind === 'audit-object' ? input.auditObject?.expect ?? input.expect : input.expect;
}

/**
 * The answer body the handler must give for an expected outcome. The corpus words its reasons for a pod action; a node
 * action's protected-namespace skip names what it leaves alone as the node of that pod (lib/checks.ts). An
 * audit-object action's are worded for it (expectedOf).
 */
export function expectedAnswer(expect: Expected, kind: TargetKind = 'pod'): Record<string, unknown> {
  if (expect.status === 400) return { status: 'invalid', error: expect.error };
  const reason = kind === 'node' && expect.skipped === 'protected-namespace' ? expect.reason.replace(/: the pod '/, ": the node of the pod '") : expect.reason;
  return {
    status: 'skipped',
    code: expect.skipped,
    reason,
    ...(expect.target === undefined ? {} : { target: expect.target }),
  };
}
