import { fieldAsString, type FalcoAlert } from './alert';
import { describeValue, InvalidInputError } from './decode';
import { isDns1123Label, isDns1123Subdomain } from './names';

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

export type Target = { readonly kind: 'pod'; readonly pod: PodRef } | { readonly kind: 'none'; readonly reason: string };

/** Falco prints `<NA>` for a field it could not fill in older versions; it means the same as null. */
const UNKNOWN = '<NA>';

const present = (value: string | undefined): value is string => value !== undefined && value !== '' && value !== UNKNOWN;

/**
 * The pod an alert is about, from `k8s.ns.name` / `k8s.pod.name` (or `ka.target.*` for audit events). A name that is
 * present but not a valid Kubernetes name is refused: it would otherwise end up in a URL.
 */
export function targetOf(alert: FalcoAlert): Target {
  if (alert.source === 'k8saudit') return auditTarget(alert);
  const namespace = fieldAsString(alert, 'k8s.ns.name');
  const name = fieldAsString(alert, 'k8s.pod.name');
  if (fieldAsString(alert, 'container.id') === 'host') {
    return { kind: 'none', reason: 'the alert is about the host (container.id is "host"), not a pod' };
  }
  if (!present(namespace) || !present(name)) {
    return {
      kind: 'none',
      reason: `the alert names no pod (k8s.ns.name is ${describeValue(alert.output_fields['k8s.ns.name'])}, k8s.pod.name is ${describeValue(alert.output_fields['k8s.pod.name'])}): a host event or a container outside Kubernetes`,
    };
  }
  return { kind: 'pod', pod: validated(namespace, name, 'k8s.ns.name', 'k8s.pod.name') };
}

function auditTarget(alert: FalcoAlert): Target {
  const resource = fieldAsString(alert, 'ka.target.resource');
  const namespace = fieldAsString(alert, 'ka.target.namespace');
  const name = fieldAsString(alert, 'ka.target.name');
  if (resource !== 'pods' || !present(namespace) || !present(name)) {
    return { kind: 'none', reason: `the audit event is about ${describeValue(resource ?? null)}, not a named pod` };
  }
  return { kind: 'pod', pod: validated(namespace, name, 'ka.target.namespace', 'ka.target.name') };
}

function validated(namespace: string, name: string, namespaceField: string, nameField: string): PodRef {
  const problems: string[] = [];
  if (!isDns1123Label(namespace)) {
    problems.push(
      `alert: output_fields["${namespaceField}"]: expected a namespace name (lowercase letters, digits and '-', at most 63), got ${describeValue(namespace)}`,
    );
  }
  if (!isDns1123Subdomain(name)) {
    problems.push(
      `alert: output_fields["${nameField}"]: expected a pod name (lowercase letters, digits, '-' and '.', at most 253), got ${describeValue(name)}`,
    );
  }
  if (problems.length > 0) throw new InvalidInputError(problems);
  return { namespace, name };
}
