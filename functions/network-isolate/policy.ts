import type { V1LabelSelector, V1NetworkPolicyEgressRule, V1NetworkPolicyPeer, V1NetworkPolicyPort } from '@kubernetes/client-node';
import { isIPv4, isIPv6 } from 'net';
import { describeValue } from '../../lib/decode';
import type { NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyRef, NetworkPolicySpec } from '../../lib/kube/networkpolicies';
import { isQualifiedName, NAMESPACE_NAME_LABEL, objectName, type ObjectName } from '../../lib/names';
import { commaList, textCodec } from '../../lib/params';

/** The default of NAMESPACE_NAME_LABEL: right from Kubernetes 1.21 on, to be set by hand before (lib/names.ts). */
export { NAMESPACE_NAME_LABEL };

/** Where cluster DNS runs in practically every distribution (CoreDNS keeps the kube-dns label). */
export const DNS_NAMESPACE = 'kube-system';
export const DNS_POD_LABELS: Readonly<Record<string, string>> = { 'k8s-app': 'kube-dns' };

const NAME_LABEL_EXPECTED =
  "a label key (an optional DNS subdomain prefix and '/', then 1 to 63 letters, digits, '-', '_' or '.') whose value is the namespace's name";
/** NAMESPACE_NAME_LABEL: the namespace label, its value the namespace's name, that ALLOW_DNS and ALLOW_NAMESPACES select by. */
export const namespaceNameLabelText = textCodec<string>(
  (s) => (isQualifiedName(s.trim()) ? { value: s.trim() } : { expected: NAME_LABEL_EXPECTED }),
  (s) => s,
);

/** The label and value that mark the policy as ours, for people listing policies. */
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'falco-response' };

const IPV4_CIDR = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\/(0|[1-9]\d?)$/;

/** The 128 bits of an IPv6 address as eight 16-bit groups; the text has passed `isIPv6`. */
function ipv6Groups(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const part = (s: string | undefined) => (s === undefined || s === '' ? [] : s.split(':'));
  const before = part(head);
  const after = part(tail);
  const groups = tail === undefined ? before : [...before, ...new Array<string>(8 - before.length - after.length).fill('0'), ...after];
  return groups.map((g) => parseInt(g, 16));
}

/** Whether every bit past `prefix` is zero, in groups of `width` bits. */
function hostBitsClear(groups: readonly number[], width: number, prefix: number): boolean {
  return groups.every((group, i) => {
    const keep = Math.min(Math.max(prefix - i * width, 0), width);
    return (group & ((1 << (width - keep)) - 1)) === 0;
  });
}

/**
 * What is wrong with a CIDR, or `undefined`: `10.0.0.0/8` and `fd00::/8` are fine; `10.0.0.1/8` has host bits set
 * (the API server may take it, but it says something other than what was meant), `10.0.0.0` lacks its prefix.
 */
export function cidrProblem(text: string): string | undefined {
  const slash = text.indexOf('/');
  if (slash === -1) return 'has no /prefix length';
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (isIPv4(address)) {
    const match = IPV4_CIDR.exec(text);
    if (match === null) return 'is not an IPv4 CIDR such as 10.0.0.0/8 (no leading zeros)';
    const prefix = Number(match[5]);
    if (prefix > 32) return 'has an IPv4 prefix length above 32';
    return hostBitsClear(match.slice(1, 5).map(Number), 8, prefix) ? undefined : 'has bits set past its prefix length';
  }
  if (isIPv6(address) && !address.includes('%')) {
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > 128) return 'has an IPv6 prefix length that is not 0 to 128';
    return hostBitsClear(ipv6Groups(address), 16, Number(prefixText)) ? undefined : 'has bits set past its prefix length';
  }
  return 'is not an IPv4 or IPv6 address with a /prefix length';
}

const CIDRS_EXPECTED = 'a comma-separated list of CIDRs such as 10.0.0.0/8 or fd00::/8';

/** ALLOW_CIDRS: `10.0.0.0/8,fd00::/8`; every item's problem is named. */
export const cidrListText = textCodec<readonly string[]>(
  (s) => {
    const items = commaList(s);
    const problems = items.flatMap((item) => {
      const problem = cidrProblem(item);
      return problem === undefined ? [] : [`${describeValue(item)} ${problem}`];
    });
    return problems.length === 0 ? { value: items } : { expected: `${CIDRS_EXPECTED} (${problems.join('; ')})` };
  },
  (items) => items.join(','),
);

/** POLICY_NAME: a NetworkPolicy name. */
export const policyNameText = textCodec<ObjectName>(
  (s) => {
    const name = objectName(s.trim());
    return name !== undefined ? { value: name } : { expected: "a NetworkPolicy name (lowercase letters, digits, '-' and '.', at most 253)" };
  },
  (s) => s,
);

/** A policy as this function writes it: spec always there. */
export type QuarantinePolicy = NetworkPolicy & { spec: NetworkPolicySpec };

export interface QuarantineSettings {
  readonly quarantineLabel: string;
  readonly allowDns: boolean;
  readonly allowCidrs: readonly string[];
  readonly allowNamespaces: readonly string[];
  /** The namespace label whose value is the namespace's name: how the DNS namespace and allowNamespaces are selected. */
  readonly namespaceNameLabel: string;
}

/**
 * The quarantine policy of a namespace: it selects the pods labelled `<quarantineLabel>: "true"` and, being of both
 * types, denies them all ingress and egress but what the settings allow (traffic to and from the listed CIDRs and
 * namespaces, and DNS queries to kube-dns). Namespaces are selected by `<namespaceNameLabel>: <name>`.
 */
export function quarantinePolicy(ref: NetworkPolicyRef, settings: QuarantineSettings): QuarantinePolicy {
  const peers: V1NetworkPolicyPeer[] = [
    ...settings.allowCidrs.map((cidr) => ({ ipBlock: { cidr } })),
    ...settings.allowNamespaces.map((namespace) => ({ namespaceSelector: { matchLabels: { [settings.namespaceNameLabel]: namespace } } })),
  ];
  const egress: V1NetworkPolicyEgressRule[] = [];
  if (settings.allowDns) {
    egress.push({
      to: [{ namespaceSelector: { matchLabels: { [settings.namespaceNameLabel]: DNS_NAMESPACE } }, podSelector: { matchLabels: { ...DNS_POD_LABELS } } }],
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
    });
  }
  if (peers.length > 0) egress.push({ to: peers });
  const spec: NetworkPolicySpec = {
    podSelector: { matchLabels: { [settings.quarantineLabel]: 'true' } },
    policyTypes: ['Ingress', 'Egress'],
    ...(peers.length > 0 ? { ingress: [{ from: peers }] } : {}),
    ...(egress.length > 0 ? { egress } : {}),
  };
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: ref.name,
      namespace: ref.namespace,
      labels: { ...MANAGED_BY },
      annotations: {
        'falco-response.io/description': `Cuts off every pod labelled ${settings.quarantineLabel}=true; written by the network-isolate function, which restores it when it drifts`,
      },
    },
    spec,
  };
}

// Semantic comparison: the API server fills defaults (protocol TCP, policyTypes) and drops empty lists, and a person
// may reorder rules or peers without changing what the policy allows; none of that is a difference.

/** A stable text for a value: object keys sorted, so that key order never counts. */
function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A list whose order does not matter (peers, ports, rules, expression values), as a sorted list of stable texts. */
const asSet = <T>(items: readonly T[] | undefined, canonical: (item: T) => unknown): string[] => [...new Set((items ?? []).map((i) => stable(canonical(i))))].sort();

/** An absent selector and an empty one mean different things in a peer (this namespace / every namespace): kept apart. */
function selector(s: V1LabelSelector | undefined): unknown {
  if (s === undefined || s === null) return undefined;
  return {
    matchLabels: s.matchLabels ?? {},
    matchExpressions: asSet(s.matchExpressions, (e) => ({ key: e.key, operator: e.operator, values: asSet(e.values, (v) => v) })),
  };
}

function peer(p: V1NetworkPolicyPeer): unknown {
  return {
    podSelector: selector(p.podSelector),
    namespaceSelector: selector(p.namespaceSelector),
    ipBlock: p.ipBlock === undefined || p.ipBlock === null ? undefined : { cidr: p.ipBlock.cidr, except: asSet(p.ipBlock.except, (e) => e) },
  };
}

function port(p: V1NetworkPolicyPort): unknown {
  return { protocol: p.protocol ?? 'TCP', port: p.port, endPort: p.endPort };
}

/** An empty or absent peer or port list matches everything: both become `any`. */
function rule(peers: readonly V1NetworkPolicyPeer[] | undefined, ports: readonly V1NetworkPolicyPort[] | undefined): unknown {
  return { peers: peers === undefined || peers.length === 0 ? 'any' : asSet(peers, peer), ports: ports === undefined || ports.length === 0 ? 'any' : asSet(ports, port) };
}

/** The spec reduced to what it allows, in a form where equal meaning gives equal text. */
export function canonicalSpec(spec: NetworkPolicySpec | undefined): string {
  const ingress = spec?.ingress ?? [];
  const egress = spec?.egress ?? [];
  // The API server's own default for a policy that names no types.
  const types = spec?.policyTypes ?? ['Ingress', ...(egress.length > 0 ? ['Egress'] : [])];
  return stable({
    podSelector: selector(spec?.podSelector ?? {}),
    policyTypes: asSet(types, (x) => x),
    ingress: asSet(ingress, (r: NetworkPolicyIngressRule) => rule(r.from, r.ports)),
    egress: asSet(egress, (r: V1NetworkPolicyEgressRule) => rule(r.to, r.ports)),
  });
}

/** Whether two specs allow exactly the same traffic to and from exactly the same pods. */
export function sameSpec(a: NetworkPolicySpec | undefined, b: NetworkPolicySpec | undefined): boolean {
  return canonicalSpec(a) === canonicalSpec(b);
}
