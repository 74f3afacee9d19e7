import type { V1Pod } from '@kubernetes/client-node';
import { admissionParams } from './admission';
import type { FalcoAlert } from './alert';
import { guardParams, type GuardDefaults, type GuardParams } from './guards';
import type { Kube } from './kube/client';
import type { Logger } from './log';
import type { ParamSpecs, ParamValues } from './params';
import type { PodRef } from './target';

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
  readonly parameters: P;
  readonly permissions: readonly Permission[];
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

/** What an action's `run` gets: everything decoded and checked, nothing left to read from the environment. */
export interface ActionContext<P extends ParamSpecs> {
  readonly alert: FalcoAlert;
  readonly eventId: string | undefined;
  readonly target: PodRef;
  /** The pod as the API server had it when the guards ran. */
  readonly pod: V1Pod;
  readonly params: ParamValues<P>;
  readonly kube: Kube;
  readonly log: Logger;
  /** Epoch milliseconds; pass it to every Kubernetes call. */
  readonly deadline: number;
  /** When true, `kube` refuses every write: report what would be done. */
  readonly dryRun: boolean;
}

export type ActionResult =
  | { readonly status: 'done'; readonly message: string; readonly details?: Readonly<Record<string, unknown>> }
  | { readonly status: 'skipped'; readonly code: 'pod-gone' | 'not-applicable'; readonly reason: string };

export interface PodAction<P extends ParamSpecs = ParamSpecs> extends FunctionDescriptor<P & GuardParams> {
  readonly kind: 'pod-action';
  run(context: ActionContext<P & GuardParams>): Promise<ActionResult>;
}

/** What the runner itself does for every pod action: it reads the pod for the opt-out guard. */
export const RUNNER_PERMISSIONS: readonly Permission[] = [{ apiGroup: '', resource: 'pods', verbs: ['get'] }];

export interface PodActionSpec<P extends ParamSpecs> {
  readonly name: string;
  readonly description: string;
  readonly requiredFields?: readonly string[];
  readonly parameters: P;
  readonly guardDefaults: GuardDefaults;
  readonly permissions: readonly Permission[];
  run(context: ActionContext<P & GuardParams>): Promise<ActionResult>;
}

/**
 * Declares an action on the pod an alert names. The shared guards' parameters and the runner's own permissions are
 * added here, so the descriptor, and so the generated manifests, are complete.
 */
export function definePodAction<P extends ParamSpecs>(spec: PodActionSpec<P>): PodAction<P> {
  return {
    kind: 'pod-action',
    name: spec.name,
    description: spec.description,
    requiredFields: spec.requiredFields ?? ['k8s.ns.name', 'k8s.pod.name'],
    parameters: { ...guardParams(spec.guardDefaults), ...admissionParams(), ...spec.parameters },
    permissions: mergePermissions([...RUNNER_PERMISSIONS, ...spec.permissions]),
    run: (context) => spec.run(context),
  };
}

/** Unites permissions by group and resource, verbs sorted: the same input always gives the same ClusterRole. */
export function mergePermissions(permissions: readonly Permission[]): Permission[] {
  const byKey = new Map<string, { apiGroup: string; resource: string; verbs: Set<string> }>();
  for (const p of permissions) {
    const key = `${p.apiGroup}/${p.resource}`;
    const entry = byKey.get(key) ?? { apiGroup: p.apiGroup, resource: p.resource, verbs: new Set<string>() };
    p.verbs.forEach((v) => entry.verbs.add(v));
    byKey.set(key, entry);
  }
  return [...byKey.values()]
    .sort((a, b) => (a.apiGroup + '/' + a.resource).localeCompare(b.apiGroup + '/' + b.resource))
    .map((e) => ({ apiGroup: e.apiGroup, resource: e.resource, verbs: [...e.verbs].sort() }));
}
