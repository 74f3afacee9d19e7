import type { ContainerName, LabelSelectorText, NamespaceName, NodeName, ObjectName, SegmentName } from '../names';

/**
 * The objects lib/kube reads and writes, named only by checked names (lib/names.ts): the target resolution and the
 * parameter codecs make them, and nothing here takes a plain string into a path.
 */

/** A pod by namespace and name. */
export interface PodRef {
  readonly namespace: NamespaceName;
  readonly name: ObjectName;
}

/** A NetworkPolicy by namespace and name. */
export interface NetworkPolicyRef {
  readonly namespace: NamespaceName;
  readonly name: ObjectName;
}

declare const built: unique symbol;
/** An absolute API path that apiPath built: the only path KubeClient sends (lib/kube/client.ts). */
export type ApiPath = string & { readonly [built]: true };

/**
 * Builds an API path from our own literal text and checked names only:
 * apiPath`/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`. A plain string in a placeholder does not compile.
 * Each name is percent-encoded as one path segment: a DNS name is left as it is, a SegmentName's `:`, blanks or `?`
 * (RBAC names may hold them) cannot end the segment or start a query.
 */
export function apiPath(literals: TemplateStringsArray, ...names: readonly (NamespaceName | ObjectName | NodeName | SegmentName)[]): ApiPath {
  return literals.reduce((path, literal, i) => path + (i === 0 ? '' : encodeURIComponent(names[i - 1])) + literal, '') as ApiPath;
}

/** What a query parameter of ours may hold: numbers, booleans and checked names, never free text. */
export type QueryValue = number | boolean | ContainerName | LabelSelectorText;

/**
 * The path with a query string of our own keys and checked values:
 * `withQuery(path, { container, tailLines: 100, previous: true })` is `path?container=app&tailLines=100&previous=true`.
 */
export function withQuery(path: ApiPath, query: Readonly<Record<string, QueryValue | undefined>>): ApiPath {
  const parts = Object.entries(query)
    .filter((entry): entry is [string, QueryValue] => entry[1] !== undefined)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  if (parts.length === 0) return path;
  return `${path}${path.includes('?') ? '&' : '?'}${parts.join('&')}` as ApiPath;
}
