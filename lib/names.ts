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
