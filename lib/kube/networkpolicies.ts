import type { V1NetworkPolicy, V1NetworkPolicyIngressRule, V1NetworkPolicyPeer, V1NetworkPolicySpec } from '@kubernetes/client-node';
import type { Kube } from './client';
import type { Operation } from './errors';

// The client library's model names an ingress rule's `from` `_from` (its serializer renames it); we send and read the
// JSON itself, so these types put the wire name back.

/** An ingress rule as the API server's JSON has it. */
export type NetworkPolicyIngressRule = Omit<V1NetworkPolicyIngressRule, '_from'> & { from?: V1NetworkPolicyPeer[] };
export type NetworkPolicySpec = Omit<V1NetworkPolicySpec, 'ingress'> & { ingress?: NetworkPolicyIngressRule[] };
/** A NetworkPolicy as the API server's JSON has it. */
export type NetworkPolicy = Omit<V1NetworkPolicy, 'spec'> & { spec?: NetworkPolicySpec };

/** A NetworkPolicy by namespace and name; both validated by the caller before they enter a path. */
export interface NetworkPolicyRef {
  readonly namespace: string;
  readonly name: string;
}

/** The policy in words, as every message names it: "the NetworkPolicy 'x' in the namespace 'prod'". */
export function describeNetworkPolicy(policy: NetworkPolicyRef): string {
  return `the NetworkPolicy '${policy.name}' in the namespace '${policy.namespace}'`;
}

const collectionPath = (namespace: string) => `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`;
const policyPath = (policy: NetworkPolicyRef) => `${collectionPath(policy.namespace)}/${policy.name}`;
const policyOp = (verb: string, policy: NetworkPolicyRef): Operation => ({
  verb,
  resource: 'networkpolicies',
  group: 'networking.k8s.io',
  object: describeNetworkPolicy(policy),
});

export function getNetworkPolicy(kube: Kube, policy: NetworkPolicyRef, deadline: number): Promise<NetworkPolicy> {
  return kube.request<NetworkPolicy>({ method: 'GET', path: policyPath(policy), op: policyOp('get', policy) }, deadline);
}

/** Creates the policy `body` describes (its metadata names `policy`); 409 when one of that name exists. */
export function createNetworkPolicy(kube: Kube, policy: NetworkPolicyRef, body: NetworkPolicy, deadline: number): Promise<NetworkPolicy> {
  return kube.request<NetworkPolicy>(
    { method: 'POST', path: collectionPath(policy.namespace), op: policyOp('create', policy), body },
    deadline,
  );
}

/**
 * Replaces the whole policy (PUT). `body.metadata.resourceVersion` must be the one read: the API server answers 409
 * when the policy changed in between, instead of overwriting that change unseen.
 */
export function replaceNetworkPolicy(kube: Kube, policy: NetworkPolicyRef, body: NetworkPolicy, deadline: number): Promise<NetworkPolicy> {
  return kube.request<NetworkPolicy>({ method: 'PUT', path: policyPath(policy), op: policyOp('update', policy), body }, deadline);
}
