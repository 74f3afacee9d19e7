/**
 * What a NetworkPolicy's selectors select on a real API server: each label selector is turned into the query text
 * of `?labelSelector=` and the namespaces and pods are LISTed with it, so the server's own matching decides, not
 * ours. A CNI enforces a policy by exactly these selectors.
 */
import { apiOk, type Cluster } from './cluster';

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

export interface Peer {
  readonly namespaceSelector?: LabelSelector;
  readonly podSelector?: LabelSelector;
  readonly ipBlock?: unknown;
}

/**
 * A LabelSelector as the text `?labelSelector=` takes (what `metav1.LabelSelectorAsSelector` makes of it):
 * `{matchLabels: {a: 'b'}, matchExpressions: [{key: 'c', operator: 'In', values: ['d', 'e']}]}` is `a=b,c in (d,e)`.
 * The empty selector is the empty text, which selects everything.
 */
export function selectorQuery(selector: LabelSelector): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`);
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    switch (operator) {
      case 'In':
        terms.push(`${key} in (${values.join(',')})`);
        break;
      case 'NotIn':
        terms.push(`${key} notin (${values.join(',')})`);
        break;
      case 'Exists':
        terms.push(key);
        break;
      case 'DoesNotExist':
        terms.push(`!${key}`);
        break;
      default:
        throw new Error(`the selector operator ${JSON.stringify(operator)} is not one of In, NotIn, Exists, DoesNotExist`);
    }
  }
  return terms.join(',');
}

/** The names of the namespaces the API server lists for the selector, sorted. */
export async function namespacesMatching(cluster: Cluster, selector: LabelSelector): Promise<string[]> {
  const list = await apiOk(cluster, { method: 'GET', path: `/api/v1/namespaces?labelSelector=${encodeURIComponent(selectorQuery(selector))}` });
  return (list.items as { metadata: { name: string } }[]).map((n) => n.metadata.name).sort();
}

/** `<namespace>/<pod>` of every pod the API server lists in the namespace for the selector, sorted. */
export async function podsMatching(cluster: Cluster, namespace: string, selector: LabelSelector): Promise<string[]> {
  const list = await apiOk(cluster, {
    method: 'GET',
    path: `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selectorQuery(selector))}`,
  });
  return (list.items as { metadata: { name: string } }[]).map((p) => `${namespace}/${p.metadata.name}`).sort();
}

/**
 * The pods a policy peer admits (NetworkPolicy semantics): with a namespaceSelector, the pods its podSelector (absent:
 * all) selects in every namespace it selects; without one, the pods its podSelector selects in the policy's own
 * namespace. Over the whole cluster, not only the test's objects. `<namespace>/<pod>`, sorted.
 */
export async function podsOfPeer(cluster: Cluster, policyNamespace: string, peer: Peer): Promise<string[]> {
  if (peer.ipBlock !== undefined) throw new Error('an ipBlock peer selects addresses, not pods');
  const namespaces = peer.namespaceSelector === undefined ? [policyNamespace] : await namespacesMatching(cluster, peer.namespaceSelector);
  const pods = await Promise.all(namespaces.map((namespace) => podsMatching(cluster, namespace, peer.podSelector ?? {})));
  return pods.flat().sort();
}
