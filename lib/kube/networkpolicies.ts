import * as D from 'io-ts/Decoder';
import type { V1NetworkPolicy, V1NetworkPolicyIngressRule, V1NetworkPolicyPeer, V1NetworkPolicySpec } from '@kubernetes/client-node';
import { list, literal, object } from '../decode';
import { checkWritten, readObject, stringMap } from './answers';
import type { Kube } from './client';
import { isApiStatus, isApiStatusAfterPossiblyAppliedAttempt, type Operation } from './errors';
import type { NamespaceName } from '../names';
import { apiPath, type ApiPath, type NetworkPolicyRef } from './refs';

// The client library's model names an ingress rule's `from` `_from` (its serializer renames it); we send and read the
// JSON itself, so these types put the wire name back.

/** An ingress rule as the API server's JSON has it. */
export type NetworkPolicyIngressRule = Omit<V1NetworkPolicyIngressRule, '_from'> & { from?: V1NetworkPolicyPeer[] };
export type NetworkPolicySpec = Omit<V1NetworkPolicySpec, 'ingress'> & { ingress?: NetworkPolicyIngressRule[] };
/** A NetworkPolicy as the API server's JSON has it. */
export type NetworkPolicy = Omit<V1NetworkPolicy, 'spec'> & { spec?: NetworkPolicySpec };

export type { NetworkPolicyRef };

/** The policy in words, as every message names it: "the NetworkPolicy 'x' in the namespace 'prod'". */
export function describeNetworkPolicy(policy: NetworkPolicyRef): string {
  return `the NetworkPolicy '${policy.name}' in the namespace '${policy.namespace}'`;
}

const collectionPath = (namespace: NamespaceName): ApiPath => apiPath`/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`;
const policyPath = (policy: NetworkPolicyRef): ApiPath => apiPath`/apis/networking.k8s.io/v1/namespaces/${policy.namespace}/networkpolicies/${policy.name}`;
const policyOp = (verb: string, policy: NetworkPolicyRef): Operation => ({
  verb,
  resource: 'networkpolicies',
  group: 'networking.k8s.io',
  object: describeNetworkPolicy(policy),
});

/** A label selector down to its lists, which network-isolate's comparison walks. */
const selectorAnswer = object({}, { matchLabels: stringMap, matchExpressions: list(object({}, { values: list(D.string) })) });
const peersAnswer = list(object({}, { podSelector: selectorAnswer, namespaceSelector: selectorAnswer, ipBlock: object({}, { except: list(D.string) }) }));
const portsAnswer = list(object({}));

/**
 * The fields of a NetworkPolicy that network-isolate reads, checked before it compares the spec or PUTs the object
 * back: the resourceVersion above all, which makes that PUT refuse to overwrite a change it did not see.
 */
const policyAnswer = object(
  {
    apiVersion: literal('networking.k8s.io/v1'),
    kind: literal('NetworkPolicy'),
    metadata: object({ name: D.string, namespace: D.string, uid: D.string, resourceVersion: D.string }, { labels: stringMap, annotations: stringMap }),
    spec: object(
      {},
      {
        podSelector: selectorAnswer,
        policyTypes: list(D.string),
        ingress: list(object({}, { from: peersAnswer, ports: portsAnswer })),
        egress: list(object({}, { to: peersAnswer, ports: portsAnswer })),
      },
    ),
  },
  {},
  'a NetworkPolicy',
);

/** The policy, or `undefined` when the API server says there is none (404 NotFound); a 2xx that is not it throws. */
export async function getNetworkPolicy(kube: Kube, policy: NetworkPolicyRef, deadline: number): Promise<NetworkPolicy | undefined> {
  const op = policyOp('get', policy);
  const found = await readObject(kube, { method: 'GET', path: policyPath(policy), op }, policyAnswer, 'that NetworkPolicy', policy, deadline);
  // Checked down to every list the comparison walks; the rest is the API server's as sent, and is PUT back as such.
  return found as unknown as NetworkPolicy | undefined;
}

/**
 * What a create did: `created` (`answerLost`: an earlier attempt may have created it and its answer was lost, so the
 * retry found it in place), or `already-there` (someone else created one of that name first).
 */
export type CreatePolicyResult = { readonly outcome: 'created'; readonly answerLost: boolean } | { readonly outcome: 'already-there' };

/** Creates the policy `body` describes (its metadata names `policy`). */
export async function createNetworkPolicy(kube: Kube, policy: NetworkPolicyRef, body: NetworkPolicy, deadline: number): Promise<CreatePolicyResult> {
  const op = policyOp('create', policy);
  let answer: unknown;
  try {
    answer = await kube.request<unknown>({ method: 'POST', path: collectionPath(policy.namespace), op, body }, deadline);
  } catch (error) {
    if (isApiStatus(error, 409) && error.reason === 'AlreadyExists') {
      // After a 429 or a refused connection nothing was created: the policy in place is someone else's.
      return isApiStatusAfterPossiblyAppliedAttempt(error, 409) ? { outcome: 'created', answerLost: true } : { outcome: 'already-there' };
    }
    throw error;
  }
  checkWritten(policyAnswer, answer, op, 'that NetworkPolicy', policy, 'created');
  return { outcome: 'created', answerLost: false };
}

/**
 * What a replace did: `replaced`, or `changed-since-read` (409: it changed since it was read; `answerLost`: an earlier
 * attempt may have been that change, its answer lost).
 */
export type ReplacePolicyResult = { readonly outcome: 'replaced' } | { readonly outcome: 'changed-since-read'; readonly answerLost: boolean };

/**
 * Replaces the whole policy (PUT). `body.metadata.resourceVersion` must be the one read: the API server answers 409
 * when the policy changed in between, instead of overwriting that change unseen.
 */
export async function replaceNetworkPolicy(kube: Kube, policy: NetworkPolicyRef, body: NetworkPolicy, deadline: number): Promise<ReplacePolicyResult> {
  const op = policyOp('update', policy);
  let answer: unknown;
  try {
    answer = await kube.request<unknown>({ method: 'PUT', path: policyPath(policy), op, body }, deadline);
  } catch (error) {
    if (isApiStatus(error, 409)) return { outcome: 'changed-since-read', answerLost: isApiStatusAfterPossiblyAppliedAttempt(error, 409) };
    throw error;
  }
  checkWritten(policyAnswer, answer, op, 'that NetworkPolicy', { ...policy, uid: body.metadata?.uid }, 'replaced');
  return { outcome: 'replaced' };
}
