/**
 * Kubernetes name rules. Alert fields are attacker-influenced: a name enters a URL, a label or a message only after
 * it passed one of these checks.
 */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A namespace name: `isDns1123Label('prod-1')` is true, `isDns1123Label('Prod')` is false. */
export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

/** A pod name: `isDns1123Subdomain('web-7d9f.x')` is true; `..`, `/`, `%2F` and uppercase are refused. */
export function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && DNS1123_SUBDOMAIN.test(value);
}

declare const checked: unique symbol;
/**
 * Text that passed the check named `Rule`. Only the constructors below make one (a cast elsewhere is the one way
 * around them, and review looks for it): lib/kube builds paths from nothing else, so the compiler refuses a URL made
 * of an alert's raw text.
 */
type Checked<Rule extends string> = string & { readonly [checked]: Rule };

/** A namespace name (a DNS-1123 label): what lib/kube puts after `/namespaces/`. */
export type NamespaceName = Checked<'namespace name'>;
/** The name of a namespaced object (a DNS-1123 subdomain): a pod, a NetworkPolicy. */
export type ObjectName = Checked<'object name'>;
/** The name of a node (a DNS-1123 subdomain). */
export type NodeName = Checked<'node name'>;
/** The name of a container of a pod (a DNS-1123 label): what lib/kube puts after `container=` in a log request. */
export type ContainerName = Checked<'container name'>;

/**
 * The name of an object whose kind takes any path segment name (RBAC's Roles, RoleBindings and their cluster-wide
 * kinds: `system:controller:job-controller`): apiPath percent-encodes it.
 */
export type SegmentName = Checked<'path segment name'>;

/** `namespaceName('prod-1')` is `'prod-1'` as a NamespaceName; `namespaceName('../x')` is undefined. */
export function namespaceName(text: string): NamespaceName | undefined {
  return isNamespaceName(text) ? text : undefined;
}

/** The check of namespaceName, as a type guard for codecs and filters. */
export function isNamespaceName(text: string): text is NamespaceName {
  return isDns1123Label(text);
}

/** `objectName('web-7d9f.x')` is that name as an ObjectName; `objectName('a/b')` and `objectName('%2F')` are undefined. */
export function objectName(text: string): ObjectName | undefined {
  return isObjectName(text) ? text : undefined;
}

/** The check of objectName, as a type guard. */
export function isObjectName(text: string): text is ObjectName {
  return isDns1123Subdomain(text);
}

/** `nodeName('ip-10-0-0-1.ec2.internal')` is that name as a NodeName; an invalid name is undefined. */
export function nodeName(text: string): NodeName | undefined {
  return isDns1123Subdomain(text) ? (text as NodeName) : undefined;
}

/** `containerName('app')` is that name as a ContainerName; `containerName('a&b')` is undefined. */
export function containerName(text: string): ContainerName | undefined {
  return isDns1123Label(text) ? (text as ContainerName) : undefined;
}

/** A label selector of ours, `key=value,...`, every key and value checked: what lib/kube puts after `labelSelector=`. */
export type LabelSelectorText = Checked<'label selector'>;

/** The selector of every label given, `equalitySelector({ a: 'b' })` is `a=b`; undefined when a key or value is not valid. */
export function equalitySelector(labels: Readonly<Record<string, string>>): LabelSelectorText | undefined {
  const entries = Object.entries(labels);
  if (entries.length === 0 || entries.some(([key, value]) => !isQualifiedName(key) || !isLabelValue(value))) return undefined;
  return entries.map(([key, value]) => `${key}=${value}`).join(',') as LabelSelectorText;
}

/** Printable ASCII only: a name with controls or non-ASCII text is no name an RBAC object of ours would act on. */
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/**
 * A path segment name, as the API server checks RBAC object names (apimachinery's IsValidPathSegmentName): not `.`
 * or `..`, no `/` and no `%`; and, stricter, printable ASCII of at most 253 characters.
 * `segmentName('system:node')` is that name as a SegmentName; `segmentName('a/b')` and `segmentName('..')` are undefined.
 */
export function segmentName(text: string): SegmentName | undefined {
  const valid = text.length <= 253 && PRINTABLE_ASCII.test(text) && text !== '.' && text !== '..' && !text.includes('/') && !text.includes('%');
  return valid ? (text as SegmentName) : undefined;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** A label value: at most 63 characters of `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, or empty. */
export function isLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/** A label or annotation key: an optional DNS subdomain prefix and `/`, then a name of at most 63 characters. */
export function isQualifiedName(key: string): boolean {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix === '' || !isDns1123Subdomain(prefix))) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

/**
 * The label the API server gives every namespace, its value the namespace's name, from Kubernetes 1.21 on only: on
 * 1.17 to 1.20 a namespace carries it once someone labels it (`kubectl label namespace falco
 * kubernetes.io/metadata.name=falco`), so until then a selector built on it matches no namespace there.
 */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
