/**
 * One function as typed Kubernetes objects, built once per build from its descriptor, its bundle and
 * falco-response.yaml. Both targets render from it: build/manifests.ts (a Kubeless Function and the shared objects)
 * and build/standalone.ts (a Deployment, a Service and the rest, with the same shared objects and the same pod).
 */
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1Container,
  V1EnvVar,
  V1NetworkPolicy,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPeer,
  V1NetworkPolicySpec,
  V1ObjectMeta,
  V1PodSpec,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import type { FunctionDescriptor, Permission } from '../lib/action';
import { INBOUND_SECRET_ENV, OUTBOUND_SECRET_ENV, SHARED_SECRET_NAME } from '../lib/auth';
import { FUNCTION_PORT } from '../lib/kubeless';
import type { Bundle } from './bundle';
import { falcosidekickCallers, parameterEnv, type DeploymentConfig } from './config';
import { configWiring } from './config-files';

/** A Kubernetes object as a manifest holds it: a client-node model with its type and name always set. */
export type Manifest<T extends object = object> = T & {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: V1ObjectMeta & { readonly name: string };
};

type Labels = Readonly<Record<string, string>>;

/**
 * A NetworkPolicy as the API server reads it. The client's model names the ingress rule's `from` `_from` (its
 * serializer renames it, `from` being a reserved word): these objects are written as they are, so typed as written.
 */
export type NetworkPolicy = Manifest<
  Omit<V1NetworkPolicy, 'spec'> & {
    readonly spec: Omit<V1NetworkPolicySpec, 'ingress'> & { readonly ingress?: (Omit<V1NetworkPolicyIngressRule, '_from'> & { readonly from?: V1NetworkPolicyPeer[] })[] };
  }
>;

/** Labels on everything we generate; the Function's own labels are load-bearing (PROTOCOLS section 2). */
export const PART_OF = { 'app.kubernetes.io/part-of': 'falco-response' };

export interface FunctionModel {
  readonly name: string;
  readonly namespace: string;
  readonly bundle: Bundle;
  readonly timeoutSeconds: number;
  readonly runtime: DeploymentConfig['runtime'];
  /** On every object of the function. */
  readonly labels: Labels;
  /** What the function is and may do: on its Function, and on its standalone Deployment. */
  readonly annotations: Labels;
  readonly serviceAccount: Manifest<V1ServiceAccount>;
  /** None for a function that makes no Kubernetes API call. */
  readonly rbac?: { readonly role: Manifest<V1ClusterRole>; readonly binding: Manifest<V1ClusterRoleBinding> };
  /** What it may do in its own namespace only (FunctionDescriptor.ownNamespacePermissions): a Role and its binding there. */
  readonly ownNamespaceRbac?: { readonly role: Manifest<V1Role>; readonly binding: Manifest<V1RoleBinding> };
  readonly configMaps: readonly Manifest<V1ConfigMap>[];
  readonly callersPolicy: NetworkPolicy;
  /** The pod both targets run: its template's annotations (maybe none) and its spec, with its one container. */
  readonly pod: { readonly annotations: Labels; readonly spec: V1PodSpec & { containers: [V1Container] } };
}

/** The objects both targets ship as they are, in the order of the files. */
export function sharedObjects(model: FunctionModel): Manifest[] {
  return [
    model.serviceAccount,
    ...(model.rbac === undefined ? [] : [model.rbac.role, model.rbac.binding]),
    ...(model.ownNamespaceRbac === undefined ? [] : [model.ownNamespaceRbac.role, model.ownNamespaceRbac.binding]),
    ...model.configMaps,
    model.callersPolicy,
  ];
}

function roleName(name: string): string {
  return `falco-response-${name}`;
}

/** The model of one function: its ServiceAccount, RBAC, configuration, callers NetworkPolicy and pod. */
export function functionModel(descriptor: FunctionDescriptor, bundle: Bundle, config: DeploymentConfig, callers: readonly string[]): FunctionModel {
  const { name } = descriptor;
  const namespace = config.namespace;
  const labels = { ...PART_OF, 'app.kubernetes.io/name': name };
  const wiring = configWiring(descriptor, namespace, labels);
  const env: V1EnvVar[] = [
    ...Object.entries(parameterEnv(descriptor, config)).map(([key, value]) => ({ name: key, value })),
    ...wiring.env,
    ...secretEnv(descriptor),
    ...(descriptor.optionalSecrets ?? []).map((s) => ({ name: s.env, valueFrom: { secretKeyRef: { name: s.secret, key: s.key, optional: true } } })),
  ];
  const permissions = permissionsOf(descriptor, config);
  const rules: V1PolicyRule[] = permissions.map((p) => ({ apiGroups: [p.apiGroup], resources: [p.resource], verbs: [...p.verbs] }));
  const ownRbac = ownNamespaceRbac(descriptor, namespace, labels);
  const callsTheApi = rules.length > 0 || ownRbac !== undefined;
  const rbac = {
    role: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: roleName(name), labels, annotations: { 'falco-response.io/description': `exactly what ${name} declares in functions/${name}/action.ts` } },
      rules,
    },
    binding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: roleName(name), labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName(name) },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  };
  return {
    name,
    namespace,
    bundle,
    timeoutSeconds: config.timeoutSeconds,
    runtime: config.runtime,
    labels,
    annotations: {
      'falco-response.io/description': descriptor.description,
      'falco-response.io/permissions': callsTheApi
        ? describeRules(descriptor, permissions)
        : 'none: this function makes no Kubernetes API call (no ClusterRole; no ServiceAccount token is mounted)',
    },
    serviceAccount: {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace, labels },
      // Only the functions that call the API get a token mounted at all.
      automountServiceAccountToken: callsTheApi,
    },
    ...(rules.length > 0 ? { rbac } : {}),
    ...(ownRbac === undefined ? {} : { ownNamespaceRbac: ownRbac }),
    configMaps: wiring.objects,
    callersPolicy: callersPolicy(name, namespace, labels, config, callers),
    pod: {
      annotations: wiring.podAnnotations,
      spec: {
        serviceAccountName: name,
        automountServiceAccountToken: callsTheApi,
        // The controller's init container copies the code under the pod's identity: give it the same uid/gid.
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 1000,
          runAsGroup: 1000,
          fsGroup: 1000,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          {
            name,
            env,
            resources: config.resources,
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              privileged: false,
              capabilities: { drop: ['ALL'] },
            },
            ...(wiring.volumeMounts.length > 0 ? { volumeMounts: [...wiring.volumeMounts] } : {}),
          },
        ],
        ...(wiring.volumes.length > 0 ? { volumes: [...wiring.volumes] } : {}),
      },
    },
  };
}

/** The functions that call others (the forwarder): every function's NetworkPolicy admits their pods. */
export function callersOf(descriptors: readonly FunctionDescriptor[]): string[] {
  return descriptors.filter((d) => d.callsFunctions === true).map((d) => d.name).sort();
}

/**
 * The shared secret, from an optional Secret (no Secret: no check, or, for a function that requires it, every call
 * refused: the pod still starts, and says why in its log). Falcosidekick's kubeless output cannot add a
 * header, so a function that calls others reads its inbound secret from its own key, set only by operators whose
 * callers can send it (Falcosidekick's webhook output can); the actions share the key the forwarder sends.
 */
function secretEnv(descriptor: FunctionDescriptor): V1EnvVar[] {
  const fromSecret = (env: string, key: string) => ({
    name: env,
    valueFrom: { secretKeyRef: { name: SHARED_SECRET_NAME, key, optional: true } },
  });
  return descriptor.callsFunctions === true
    ? [fromSecret(INBOUND_SECRET_ENV, 'forwarder-token'), fromSecret(OUTBOUND_SECRET_ENV, 'token')]
    : [fromSecret(INBOUND_SECRET_ENV, 'token')];
}

/**
 * Who may call the function: Falcosidekick's pods, and the pods of the functions that call others (the forwarder).
 * Pods are selected by `function: <name>`, the label both targets give them; Falcosidekick's namespace by the labels
 * of `callers.falcosidekick.namespaceLabels` (default: its name label, which Kubernetes sets only from 1.21 on).
 * It takes an enforcing CNI.
 */
function callersPolicy(name: string, namespace: string, labels: Labels, config: DeploymentConfig, callers: readonly string[]): NetworkPolicy {
  const sidekick = falcosidekickCallers(config);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: `${name}-callers`, namespace, labels },
    spec: {
      podSelector: { matchLabels: { function: name } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { ...sidekick.namespaceLabels } },
              podSelector: { matchLabels: { ...sidekick.podLabels } },
            },
            ...callers.filter((caller) => caller !== name).map((caller) => ({ podSelector: { matchLabels: { function: caller } } })),
          ],
          ports: [{ protocol: 'TCP', port: FUNCTION_PORT }],
        },
      ],
    },
  };
}

/** What the function may do with its configured parameters (delete-object's follow its RESOURCES), else its declared permissions. */
function permissionsOf(descriptor: FunctionDescriptor, config: DeploymentConfig): readonly Permission[] {
  return descriptor.permissionsFor === undefined ? descriptor.permissions : descriptor.permissionsFor(parameterEnv(descriptor, config));
}

function describeRules(descriptor: FunctionDescriptor, permissions: readonly Permission[]): string {
  const described = (list: readonly Permission[]) =>
    list.map((p) => `${p.verbs.join(',')} ${p.apiGroup === '' ? p.resource : `${p.resource}.${p.apiGroup}`}`).join('; ');
  const own = descriptor.ownNamespacePermissions ?? [];
  return described(permissions) + (own.length === 0 ? '' : `; in its own namespace only: ${described(own)}`);
}

/**
 * The Role and RoleBinding of what a function may do in its own namespace only (its evidence Secrets), named as its
 * ClusterRole is; none for a function that declares nothing there.
 */
function ownNamespaceRbac(descriptor: FunctionDescriptor, namespace: string, labels: Labels): FunctionModel['ownNamespaceRbac'] {
  const own = descriptor.ownNamespacePermissions ?? [];
  if (own.length === 0) return undefined;
  const { name } = descriptor;
  return {
    role: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: {
        name: roleName(name),
        namespace,
        labels,
        annotations: { 'falco-response.io/description': `exactly what ${name} declares for its own namespace in functions/${name}/action.ts` },
      },
      rules: own.map((p) => ({ apiGroups: [p.apiGroup], resources: [p.resource], verbs: [...p.verbs] })),
    },
    binding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: roleName(name), namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName(name) },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  };
}
