import { admissionParams, type AdmissionParams } from './admission';
import type { FalcoAlert } from './alert';
import { callerParams, type CallerPolicy } from './auth';
import { MINIMUM_PRIORITY_CHECK, OPT_OUT_CHECK, PROTECTED_NAMESPACE_CHECK, RULES_CHECK, type Check } from './checks';
import { TEST_EVENT, type DeclaredCheck } from './entry';
import { guardParams, type GuardDefaults, type GuardParams } from './guards';
import type { Kube } from './kube/client';
import type { Logger } from './log';
import type { FailureCode } from './outcome';
import { readParams, type ParamSpecs, type ParamValues } from './params';
import type { PodRef } from './target';
import type { AlertSource, RefOfKind, TargetKind, TargetOfKind, TargetSpec } from './resolve';
import { POD_TARGET } from './targets/pod';

/** One RBAC rule an action needs; the generated ClusterRole holds exactly the union of these. */
export interface Permission {
  readonly apiGroup: string;
  readonly resource: string;
  readonly verbs: readonly string[];
}

/** What every function of `functions/` says about itself; manifests and docs are generated from it. */
export interface FunctionDescriptor<P extends ParamSpecs = ParamSpecs> {
  /** Equal to the folder name under functions/ (a test checks it). */
  readonly name: string;
  readonly description: string;
  /** The Falco output fields it reads. */
  readonly requiredFields: readonly string[];
  /** Its skip conditions, in the order they run: docs/functions.md lists them. */
  readonly checks: readonly DeclaredCheck[];
  readonly parameters: P;
  /** What it may do with its parameters' defaults (docs/functions.md lists these). */
  readonly permissions: readonly Permission[];
  /**
   * What it may do in its own namespace only (the evidence Secrets of capture-evidence): a Role and a RoleBinding
   * there, not the ClusterRole.
   */
  readonly ownNamespacePermissions?: readonly Permission[];
  /**
   * What it may do with the parameters' values of `env` (falco-response.yaml), where a parameter says what it acts on
   * (delete-object's RESOURCES): the generated ClusterRole holds these. Without it, `permissions`.
   */
  permissionsFor?(env: Readonly<Record<string, string>>): readonly Permission[];
  /** Files the function reads at start-up; the generator ships them in a ConfigMap operators edit without a rebuild. */
  readonly configFiles?: readonly ConfigFile[];
  /**
   * An environment variable the generator fills with the pod's own namespace (downward API): for a function that
   * needs it without the ServiceAccount token mount, which holds the namespace file but is off for permissionless ones.
   */
  readonly namespaceEnv?: string;
  /**
   * A function that calls the others (the forwarder): the others' NetworkPolicies admit its pods, and it gets the
   * shared secret to send them (lib/auth.ts).
   */
  readonly callsFunctions?: boolean;
  /** Keys of optional Secrets read into variables (the generator wires them: no Secret or no key, no variable). */
  readonly optionalSecrets?: readonly OptionalSecretKey[];
  /**
   * Whether it runs without the shared secret (lib/auth.ts): by default it does, accepting every caller; one that
   * requires it refuses every call without it, unless ALLOW_UNAUTHENTICATED (among its parameters) is true.
   */
  readonly callers?: CallerPolicy;
}

/** A variable filled from a key of a Secret that may not exist, e.g. the notifier's webhook URL. */
export interface OptionalSecretKey {
  readonly secret: string;
  readonly key: string;
  readonly env: string;
  readonly description: string;
}

/**
 * A configuration file of a function. The generator puts every file of a function into the ConfigMap
 * `<function>-config`, mounts it read-only and sets `env` to the file's path in the pod.
 */
export interface ConfigFile {
  /** The file name in the ConfigMap and in the mounted folder, e.g. `routes.json`. */
  readonly name: string;
  /** The environment variable that receives the file's path. */
  readonly env: string;
  readonly description: string;
  /** The default content, written into the generated ConfigMap. */
  readonly content: string;
  /** When the function reads the mounted file: once at start, or again whenever it changes (an edited ConfigMap). */
  readonly read: 'at-start' | 'followed';
  /**
   * Every problem of a content, each naming where it is; the build fails on any. `functions` are the names of the
   * functions the build found, for files that name other functions.
   */
  check?(content: string, context: { readonly functions: readonly string[] }): readonly string[];
}

/** What an action's `run` and checks get: everything decoded, checked and read, nothing left to read from the environment. */
export interface ActionContext<P extends ParamSpecs, K extends TargetKind = 'pod'> {
  readonly alert: FalcoAlert;
  readonly eventId: string | undefined;
  /** What it acts on, as the API server had it when the checks ran (lib/resolve.ts). */
  readonly target: TargetOfKind<K>;
  /** Its own parameters only: the shared guards' and the admission's settings are the runner's. */
  readonly params: ParamValues<P>;
  readonly kube: Kube;
  readonly log: Logger;
  /** The namespace the function runs in, when known (lib/runner.ts): where an action keeps what it writes for itself. */
  readonly ownNamespace: string | undefined;
  /** Epoch milliseconds; pass it to every Kubernetes call. */
  readonly deadline: number;
  /** When true, `kube` refuses every write: report what would be done. */
  readonly dryRun: boolean;
}

/** What every check of an action may ask the runner: which namespaces are protected, and the time. */
export interface CheckContext {
  /** Whether a namespace is one of PROTECTED_NAMESPACES or the function's own (lib/checks.ts isProtectedNamespace). */
  readonly isProtectedNamespace: (namespace: string) => boolean;
  /** Epoch milliseconds, when the call's checks began. */
  readonly now: number;
}

/** What an action's own checks read: the alert, the target as read, its parameters, the runner's context. */
export type ActionCheckInput<P extends ParamSpecs, K extends TargetKind> = Pick<ActionContext<P, K>, 'alert' | 'target' | 'params'> & CheckContext;

/** What an action's checks on the target's names read, before anything is asked of the API server. */
export interface ActionRefCheckInput<P extends ParamSpecs, K extends TargetKind> extends CheckContext {
  readonly alert: FalcoAlert;
  readonly ref: RefOfKind<K>;
  readonly params: ParamValues<P>;
}

/** An object an action acted on (or, in a dry run, would have): `changed` false when it was already as wanted. */
export interface Touched {
  /** The object's kind: `Pod`, `NetworkPolicy`, `Node`. */
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  readonly changed: boolean;
}

/** A pod as `touched` lists it: `touchedPod(target.pod, true)`. */
export function touchedPod(pod: PodRef, changed: boolean): Touched {
  return { kind: 'Pod', namespace: pod.namespace, name: pod.name, changed };
}

/**
 * The Kubernetes Event the runner records on the target after a change (lib/audit.ts):
 * `<action> <what> after the Falco rule "…" (priority …, alert uuid …)`, `change` naming it in the warning logged
 * when the Event cannot be recorded ("the pod was <change> but …").
 */
export interface AuditNote {
  readonly reason: string;
  readonly what: string;
  readonly change: string;
}

/**
 * What an action did: the objects it touched (the runner builds the answer's `details` from them, with `changed` and
 * `eventRecorded`), the Event to record when one changed, and any facts of its own for `details`. A skip found while
 * acting (the pod deleted under its feet) is answered as the checks' skips are, a refusal found while acting (the object
 * changed under its feet) as their failures.
 */
export type ActionResult =
  | {
      readonly status: 'done';
      readonly message: string;
      readonly touched: readonly Touched[];
      readonly audit?: AuditNote;
      readonly facts?: Readonly<Record<string, unknown>>;
    }
  | { readonly status: 'skipped'; readonly code: 'pod-gone' | 'node-gone' | 'object-gone' | 'not-applicable'; readonly reason: string }
  | { readonly status: 'failed'; readonly code: FailureCode; readonly error: string };

/** The caller check's parameter, which an action that requires the shared secret has (lib/auth.ts callerParams). */
export type CallerParams = Partial<ReturnType<typeof callerParams>>;

/** Every parameter a Function's pod reads: the shared guards', the admission's, the caller check's, then the action's own. */
export type ActionParams<P extends ParamSpecs> = GuardParams & AdmissionParams & CallerParams & P;

export interface Action<P extends ParamSpecs = ParamSpecs, K extends TargetKind = TargetKind> extends FunctionDescriptor<ActionParams<P>> {
  readonly kind: `${K}-action`;
  /** What it acts on: how the runner finds it and reads it (lib/targets/). */
  readonly target: TargetSpec<K>;
  /** The alert sources it takes (lib/resolve.ts); an alert of another is skipped, code `source-not-accepted`. */
  readonly sources: readonly AlertSource[];
  /** For an audit-object action: the resources (`ka.target.resource`) it acts on, with its parameters' defaults. */
  readonly resources: readonly string[];
  /** The resources it acts on with these parameters (a parameter may list them); the runner finds the target by these. */
  resourcesFor(params: ParamValues<P>): readonly string[];
  readonly guardParameters: GuardParams;
  readonly admissionParameters: AdmissionParams;
  readonly ownParameters: P;
  /** Its own checks, run after the shared ones, in order. */
  readonly ownChecks: readonly Check<ActionCheckInput<P, K>>[];
  /** Its own checks on the target's names, run after the protected-namespace check, before the target is read. */
  readonly refChecks: readonly Check<ActionRefCheckInput<P, K>>[];
  run(context: ActionContext<P, K>): Promise<ActionResult>;
}

export type PodAction<P extends ParamSpecs = ParamSpecs> = Action<P, 'pod'>;

/** What the runner itself does for every pod action: it reads the pod for the opt-out guard. */
export const RUNNER_PERMISSIONS: readonly Permission[] = POD_TARGET.permissions([]);

export interface ActionSpec<P extends ParamSpecs, K extends TargetKind> {
  readonly name: string;
  readonly description: string;
  /** Defaults to every source the kind of target can be named by. */
  readonly sources?: readonly AlertSource[];
  /**
   * An audit-object action's resources (lib/targets/audit-object.ts AUDIT_RESOURCES): every one it may act on, and,
   * when a parameter lists those it does act on, `configured` reads them from the parameters.
   */
  readonly resources?: readonly string[] | { readonly all: readonly string[]; configured(params: ParamValues<P>): readonly string[] };
  readonly parameters: P;
  readonly guardDefaults: GuardDefaults;
  /** Its permissions beyond the target's reading, fixed or following its parameters. */
  readonly permissions: readonly Permission[] | ((params: ParamValues<P>) => readonly Permission[]);
  readonly ownNamespacePermissions?: readonly Permission[];
  /** The variable the generator fills with the pod's namespace (FunctionDescriptor.namespaceEnv), read by the runner. */
  readonly namespaceEnv?: string;
  readonly checks?: readonly Check<ActionCheckInput<P, K>>[];
  /** Checks on the target's names alone, run before it is read (delete-object's cluster-critical names). */
  readonly refChecks?: readonly Check<ActionRefCheckInput<P, K>>[];
  /**
   * What an unauthenticated caller could make it do, for an action that must not run without the shared secret
   * (delete-object: "it deletes the object any alert names"): without the Secret it refuses every call unless
   * ALLOW_UNAUTHENTICATED is true (lib/auth.ts CallerPolicy), and says this at start.
   */
  readonly requiresSharedSecret?: string;
  run(context: ActionContext<P, K>): Promise<ActionResult>;
}

/**
 * Declares an action on a kind of target: `defineAction(NODE_TARGET, { name, … })`. The shared guards' parameters
 * and checks, the target's checks and the runner's own permissions are added here, so the descriptor, and so the
 * generated manifests and docs, are complete; declared sources or resources the target cannot take throw.
 */
export function defineAction<P extends ParamSpecs, K extends TargetKind>(target: TargetSpec<K>, spec: ActionSpec<P, K>): Action<P, K> {
  const sources = spec.sources ?? target.sources;
  const declared = spec.resources ?? [];
  const resources = 'all' in declared ? declared.all : declared;
  const resourcesFor = (params: ParamValues<P>): readonly string[] => ('all' in declared ? declared.configured(params) : declared);
  const permissionsOf = (params: ParamValues<P>) =>
    mergePermissions([...target.permissions(resourcesFor(params)), ...(typeof spec.permissions === 'function' ? spec.permissions(params) : spec.permissions)]);
  const problems = [
    ...sources.filter((s) => !target.sources.includes(s)).map((s) => `sources: a ${target.kind} is never named by a ${s} alert`),
    ...target.resourceProblems(resources),
  ];
  if (problems.length > 0) throw new Error(`the action ${spec.name}: ${problems.join('; ')}`);
  const guardParameters = guardParams(spec.guardDefaults);
  const admissionParameters = admissionParams();
  const callers: CallerPolicy = spec.requiresSharedSecret === undefined ? { secret: 'optional' } : { secret: 'required', why: spec.requiresSharedSecret };
  const callerParameters: CallerParams = callers.secret === 'required' ? callerParams() : {};
  const ownChecks = spec.checks ?? [];
  const refChecks = spec.refChecks ?? [];
  const sourceCheck = { name: 'source', description: `an alert whose source is not ${sources.join(' or ')} is skipped, code \`source-not-accepted\`.` };
  return {
    kind: `${target.kind}-action`,
    target,
    sources,
    resources,
    name: spec.name,
    description: spec.description,
    requiredFields: [...new Set(sources.flatMap((s) => target.requiredFields[s] ?? []))],
    checks: [TEST_EVENT, RULES_CHECK, MINIMUM_PRIORITY_CHECK, sourceCheck, target.checks.find, PROTECTED_NAMESPACE_CHECK, ...refChecks, target.checks.read, OPT_OUT_CHECK, ...ownChecks].map(
      ({ name, description }) => ({ name, description }),
    ),
    parameters: { ...guardParameters, ...admissionParameters, ...callerParameters, ...spec.parameters },
    callers,
    guardParameters,
    admissionParameters,
    ownParameters: spec.parameters,
    ownChecks,
    refChecks,
    resourcesFor,
    // The defaults' permissions, and the configured ones: the build reads the parameters as the pod will (build/config.ts).
    permissions: permissionsOf(readParams(spec.parameters, {})),
    permissionsFor: (env) => permissionsOf(readParams(spec.parameters, env)),
    ...(spec.ownNamespacePermissions === undefined ? {} : { ownNamespacePermissions: mergePermissions(spec.ownNamespacePermissions) }),
    ...(spec.namespaceEnv === undefined ? {} : { namespaceEnv: spec.namespaceEnv }),
    run: (context) => spec.run(context),
  };
}

/** Declares an action on the pod an alert names: `defineAction(POD_TARGET, spec)`. */
export function definePodAction<P extends ParamSpecs>(spec: ActionSpec<P, 'pod'>): PodAction<P> {
  return defineAction(POD_TARGET, spec);
}

/**
 * Unites permissions by group and resource, verbs sorted: the same input always gives the same ClusterRole. Sorted
 * by code unit, not localeCompare: the order must not depend on the machine's locale, and the first localeCompare
 * loads ICU's collation data, some 9 ms of every cold start on Node 14 (this runs when an action is defined).
 */
export function mergePermissions(permissions: readonly Permission[]): Permission[] {
  const byKey = new Map<string, { apiGroup: string; resource: string; verbs: Set<string> }>();
  for (const p of permissions) {
    const key = `${p.apiGroup}/${p.resource}`;
    const entry = byKey.get(key) ?? { apiGroup: p.apiGroup, resource: p.resource, verbs: new Set<string>() };
    p.verbs.forEach((v) => entry.verbs.add(v));
    byKey.set(key, entry);
  }
  return [...byKey.values()]
    .sort((a, b) => compareText(`${a.apiGroup}/${a.resource}`, `${b.apiGroup}/${b.resource}`))
    .map((e) => ({ apiGroup: e.apiGroup, resource: e.resource, verbs: [...e.verbs].sort() }));
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
