import { fieldAsString, isAuditAlert, knownField, type FalcoAlert } from './alert';
import { describeValue, InvalidInputError } from './decode';
import type { PodRef } from './kube/refs';
import { isDns1123Label, namespaceName, objectName } from './names';

export type { PodRef };

export type Target = { readonly kind: 'pod'; readonly pod: PodRef } | { readonly kind: 'none'; readonly reason: string };

/**
 * Where Falco puts the pod of a syscall alert: the container plugin's `k8s.*` fields (Falco 0.41+, and Falco's own
 * before it), else the k8smeta plugin's `k8smeta.*`, which may be the only ones.
 */
export const POD_NAMESPACE_FIELDS: readonly string[] = ['k8s.ns.name', 'k8smeta.ns.name'];
export const POD_NAME_FIELDS: readonly string[] = ['k8s.pod.name', 'k8smeta.pod.name'];

/**
 * The pod an alert is about, from `k8s.ns.name` / `k8s.pod.name` (or `k8smeta.*`, or `ka.target.*` for audit
 * events). A name that is present but not a valid Kubernetes name is refused: it would otherwise end up in a URL.
 */
export function targetOf(alert: FalcoAlert): Target {
  if (isAuditAlert(alert)) return auditTarget(alert);
  if (fieldAsString(alert, 'container.id') === 'host') {
    return { kind: 'none', reason: 'the alert is about the host (container.id is "host"), not a pod' };
  }
  const namespace = agreed(alert, POD_NAMESPACE_FIELDS, 'namespace');
  const name = agreed(alert, POD_NAME_FIELDS, 'pod name');
  if (namespace === undefined || name === undefined) {
    return {
      kind: 'none',
      reason: `the alert names no pod (k8s.ns.name is ${describeValue(alert.output_fields['k8s.ns.name'])}, k8s.pod.name is ${describeValue(alert.output_fields['k8s.pod.name'])}): a host event or a container outside Kubernetes`,
    };
  }
  return { kind: 'pod', pod: validated(namespace.value, name.value, namespace.field, name.field) };
}

/** The known value of the first field, refused when another of the fields holds a different one: no guessing. */
function agreed(alert: FalcoAlert, fields: readonly string[], what: string): { field: string; value: string } | undefined {
  const first = knownField(alert, fields);
  if (first === undefined) return undefined;
  for (const field of fields.slice(fields.indexOf(first.field) + 1)) {
    const other = knownField(alert, [field]);
    if (other !== undefined && other.value !== first.value) {
      throw new InvalidInputError([
        `alert: output_fields["${field}"]: expected the same ${what} as output_fields["${first.field}"] (${describeValue(first.value)}), got ${describeValue(other.value)}`,
      ]);
    }
  }
  return first;
}

/**
 * The namespace an alert is about (its pod's, or its audit event's object's), validated; undefined when unknown.
 * The forwarder routes by it.
 */
export function namespaceOf(alert: FalcoAlert): string | undefined {
  const known = isAuditAlert(alert) ? knownField(alert, ['ka.target.namespace']) : agreed(alert, POD_NAMESPACE_FIELDS, 'namespace');
  if (known === undefined) return undefined;
  if (!isDns1123Label(known.value)) throw new InvalidInputError([namespaceProblem(known.field, known.value)]);
  return known.value;
}

const namespaceProblem = (field: string, value: string) =>
  `alert: output_fields["${field}"]: expected a namespace name (lowercase letters, digits and '-', at most 63), got ${describeValue(value)}`;

function auditTarget(alert: FalcoAlert): Target {
  const resource = fieldAsString(alert, 'ka.target.resource');
  const namespace = knownField(alert, ['ka.target.namespace']);
  // A create names its object in the answer: `ka.target.name` is empty until the API server has named it.
  const name = knownField(alert, ['ka.target.name', 'ka.resp.name']);
  if (resource !== 'pods' || namespace === undefined || name === undefined) {
    return { kind: 'none', reason: `the audit event is about ${describeValue(resource ?? null)}, not a named pod` };
  }
  return { kind: 'pod', pod: validated(namespace.value, name.value, namespace.field, name.field) };
}

function validated(namespace: string, name: string, namespaceField: string, nameField: string): PodRef {
  const problems: string[] = [];
  const checkedNamespace = namespaceName(namespace);
  const checkedName = objectName(name);
  if (checkedNamespace === undefined) problems.push(namespaceProblem(namespaceField, namespace));
  if (checkedName === undefined) {
    problems.push(
      `alert: output_fields["${nameField}"]: expected a pod name (lowercase letters, digits, '-' and '.', at most 253), got ${describeValue(name)}`,
    );
  }
  if (checkedNamespace === undefined || checkedName === undefined) throw new InvalidInputError(problems);
  return { namespace: checkedNamespace, name: checkedName };
}
