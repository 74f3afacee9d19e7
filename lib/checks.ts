import type { FalcoAlert } from './alert';
import { describeValue } from './decode';
import type { GuardSettings } from './guards';
import type { DeclaredCheck } from './entry';
import type { NamespaceName } from './names';
import type { FailureCode, SkipCode } from './outcome';
import { atLeast } from './priority';
import { describeTarget, type Target, type TargetRef } from './resolve';

/** Why a check says no: a code an operator can filter on, and a reason that names the value and the object. */
export interface Skip {
  readonly code: SkipCode;
  readonly reason: string;
}

export type { DeclaredCheck } from './entry';

/** Why a check refuses as a failure, not a skip: nothing is done, and what was found needs an operator (lib/outcome.ts FailureCode). */
export interface CheckFailure {
  readonly failure: FailureCode;
  readonly error: string;
}

/**
 * A named skip condition, declared in an action's descriptor and run by the runner in order, the first that says no
 * answering `skipped` with its code and reason (or `failed`, for a CheckFailure): `undefined` means go on.
 */
export interface Check<I> extends DeclaredCheck {
  check(input: I): Skip | CheckFailure | undefined;
}

/** What the checks on the alert alone read: nothing is asked of the API server before they pass. */
export interface AlertCheckInput {
  readonly alert: FalcoAlert;
  readonly guards: GuardSettings;
}

/** What the checks on the target's names read, before the target is read. */
export interface RefCheckInput {
  readonly ref: TargetRef;
  readonly guards: GuardSettings;
  readonly ownNamespace: string | undefined;
}

/** What the checks on the target read, once it was read from the API server. */
export interface TargetCheckInput {
  readonly target: Target;
  readonly guards: GuardSettings;
}

export const RULES_CHECK: Check<AlertCheckInput> = {
  name: 'rules',
  description: 'an alert whose rule is not one of `RULES` is skipped, code `rule-not-selected`.',
  check: ({ alert, guards }) =>
    guards.rules.all || guards.rules.names.includes(alert.rule)
      ? undefined
      : { code: 'rule-not-selected', reason: `the rule ${describeValue(alert.rule)} is not one this action answers (RULES)` },
};

export const MINIMUM_PRIORITY_CHECK: Check<AlertCheckInput> = {
  name: 'minimum-priority',
  description: 'an alert below `MINIMUM_PRIORITY` is skipped, code `priority-below-minimum`.',
  check: ({ alert, guards }) =>
    atLeast(alert.priority, guards.minimumPriority)
      ? undefined
      : { code: 'priority-below-minimum', reason: `the priority ${alert.priority} is below the minimum ${guards.minimumPriority} (MINIMUM_PRIORITY)` },
};

/** The namespace a target's guard looks at: the pod's (for a node, the pod that led to it), the object's; none for a cluster-wide object. */
function namespaceOfRef(ref: TargetRef): NamespaceName | undefined {
  return ref.kind === 'audit-object' ? ref.object.namespace : ref.pod.namespace;
}

/** Whether a namespace is one of PROTECTED_NAMESPACES or the function's own: what no action touches. */
export function isProtectedNamespace(namespace: string, guards: GuardSettings, ownNamespace: string | undefined): boolean {
  return (guards.protectedNamespaces as readonly string[]).includes(namespace) || namespace === ownNamespace;
}

export const PROTECTED_NAMESPACE_CHECK: Check<RefCheckInput> = {
  name: 'protected-namespace',
  description:
    "a target in one of `PROTECTED_NAMESPACES` or in the function's own namespace is skipped before it is read, code `protected-namespace` (for a node: the namespace of the alert's pod).",
  check: ({ ref, guards, ownNamespace }) => {
    const namespace = namespaceOfRef(ref);
    if (namespace === undefined || !isProtectedNamespace(namespace, guards, ownNamespace)) return undefined;
    const what = ref.kind === 'pod' ? `the pod '${ref.pod.name}'` : ref.kind === 'node' ? `the node of the pod '${ref.pod.name}'` : `the ${ref.object.resource.kind} '${ref.object.name}'`;
    return { code: 'protected-namespace', reason: `the namespace '${namespace}' is protected (PROTECTED_NAMESPACES): ${what} is left alone` };
  },
};

export const OPT_OUT_CHECK: Check<TargetCheckInput> = {
  name: 'opted-out',
  description: 'a target labelled or annotated `<OPT_OUT_KEY>: "true"` (the pod, the node, the object acted on) is left alone, code `opted-out`.',
  check: ({ target, guards }) => {
    const key = guards.optOutKey;
    const metadata = target.found.metadata;
    const optedOut = metadata?.labels?.[key] === 'true' || metadata?.annotations?.[key] === 'true';
    return optedOut ? { code: 'opted-out', reason: `${describeTarget(target)} opted out with ${key}=true` } : undefined;
  },
};

/** The shared checks, in the order the runner runs them, around the reading of the target. */
export const SHARED_CHECKS = {
  alert: [RULES_CHECK, MINIMUM_PRIORITY_CHECK],
  ref: [PROTECTED_NAMESPACE_CHECK],
  target: [OPT_OUT_CHECK],
} as const;

/** The first of `checks` that says no, or undefined. */
export function firstRefusal<I>(checks: readonly Check<I>[], input: I): Skip | CheckFailure | undefined {
  for (const c of checks) {
    const skip = c.check(input);
    if (skip !== undefined) return skip;
  }
  return undefined;
}
