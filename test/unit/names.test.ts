/**
 * Checked names: the only text lib/kube puts into a URL. The runtime half tests the constructors; the half that
 * matters most is `refusedByTheCompiler` below, which `npm run typecheck` (tsconfig.json includes test/) compiles and
 * which fails to compile the day one of its refusals stops holding ("Unused '@ts-expect-error' directive").
 */
import { strict as assert } from 'assert';
import { fieldAsString, type FalcoAlert } from '../../lib/alert';
import type { Kube } from '../../lib/kube/client';
import { getNetworkPolicy } from '../../lib/kube/networkpolicies';
import { getPod } from '../../lib/kube/pods';
import { apiPath, type PodRef } from '../../lib/kube/refs';
import { namespaceName, nodeName, objectName, segmentName, type NamespaceName, type ObjectName, type SegmentName } from '../../lib/names';
import { listText, namespaceListText, readParams, param } from '../../lib/params';
import { targetOf } from '../../lib/target';

describe('checked names (lib/names.ts): what lib/kube builds paths from', () => {
  it('namespaceName takes a DNS-1123 label and refuses text that could leave the path', () => {
    // Given / When / Then
    assert.equal(namespaceName('prod-1'), 'prod-1');
    for (const text of ['', 'Prod', '../kube-system', 'a/b', '%2F', 'a.b', 'a?watch=1', `${'a'.repeat(64)}`]) {
      assert.equal(namespaceName(text), undefined, text);
    }
  });

  it('objectName and nodeName take a DNS-1123 subdomain and refuse the rest', () => {
    // Given / When / Then
    assert.equal(objectName('web-7d9f.x'), 'web-7d9f.x');
    assert.equal(nodeName('ip-10-0-0-1.ec2.internal'), 'ip-10-0-0-1.ec2.internal');
    for (const text of ['', '..', 'a/b', '%2F', 'Web', 'a#b', `${'a'.repeat(254)}`]) {
      assert.equal(objectName(text), undefined, text);
      assert.equal(nodeName(text), undefined, text);
    }
  });

  it('segmentName takes what RBAC names may be (":" and blanks) and refuses what could leave the segment', () => {
    // Given / When / Then
    for (const text of ['system:node', 'ops:backdoor x', "it's", 'a?b#c', 'x'.repeat(253)]) assert.equal(segmentName(text), text);
    for (const text of ['', '.', '..', 'a/b', '%2F', 'a%b', 'a\nb', 'kübe', 'a\u202eb', 'x'.repeat(254)]) assert.equal(segmentName(text), undefined, text);
  });

  it('apiPath percent-encodes a SegmentName as one segment, and leaves DNS names as they are', () => {
    // Given
    const namespace = namespaceName('prod')!;
    const name = segmentName('system:a b?c#d')!;

    // When
    const path = apiPath`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings/${name}`;

    // Then
    assert.equal(path, '/apis/rbac.authorization.k8s.io/v1/namespaces/prod/rolebindings/system%3Aa%20b%3Fc%23d');
    assert.equal(apiPath`/api/v1/namespaces/${namespace}/pods/${objectName('web-7d9f.x')!}`, '/api/v1/namespaces/prod/pods/web-7d9f.x');
  });

  it('apiPath joins our literal text and the checked names, in order', () => {
    // Given
    const pod: PodRef = { namespace: namespaceName('prod')!, name: objectName('web-1')! };

    // When
    const path = apiPath`/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`;

    // Then
    assert.equal(path, '/api/v1/namespaces/prod/pods/web-1');
    assert.equal(apiPath`/x`, '/x');
  });

  it('namespaceListText reads NamespaceNames, and names the item it refuses', () => {
    // Given
    const specs = { namespaces: param('NAMESPACES', namespaceListText, '', 'namespaces') };

    // When
    const names: readonly NamespaceName[] = readParams(specs, { NAMESPACES: ' prod , , shop ' }).namespaces;

    // Then
    assert.deepEqual(names, ['prod', 'shop']);
    assert.throws(
      () => readParams(specs, { NAMESPACES: 'prod,../x' }),
      { message: 'invalid configuration: NAMESPACES: expected a comma-separated list of namespace names ("../x" is not one), got "prod,../x"' },
    );
  });
});

/**
 * Never called: it exists to be compiled. Each `@ts-expect-error` line is a path that must not compile; the lines
 * without one show that the checked way does.
 */
export async function refusedByTheCompiler(kube: Kube, alert: FalcoAlert, deadline: number): Promise<void> {
  const raw = fieldAsString(alert, 'k8s.pod.name') ?? '';
  const op = { verb: 'get', resource: 'pods', group: '', object: 'a pod' };

  // @ts-expect-error: an alert's raw field is no NamespaceName, nor an ObjectName
  await getPod(kube, { namespace: raw, name: 'web' }, deadline);
  // @ts-expect-error: the name too must be checked
  await getPod(kube, { namespace: namespaceName('prod')!, name: raw }, deadline);
  // @ts-expect-error: a NetworkPolicy by raw names
  await getNetworkPolicy(kube, { namespace: raw, name: raw }, deadline);
  // @ts-expect-error: apiPath takes checked names only
  const notAPath = apiPath`/api/v1/namespaces/${raw}/pods`;
  // @ts-expect-error: KubeClient sends only a path apiPath built, never a string
  await kube.request({ method: 'GET', path: `/api/v1/namespaces/${raw}/pods`, op }, deadline);
  // @ts-expect-error: a namespace name is not an object name (the rules differ: a subdomain may hold dots)
  const notAnObjectName: ObjectName = namespaceName('prod')!;
  // @ts-expect-error: a path segment name (RBAC's, may hold ':') is no object name a pod path takes
  const notAPodName: ObjectName = segmentName('system:node')!;
  // @ts-expect-error: nor is a raw field a SegmentName
  const notASegment: SegmentName = raw;
  void notAPodName;
  void notASegment;
  // @ts-expect-error: a list read with a plain check is not a list of namespace names
  const notNamespaces: readonly NamespaceName[] = readParams({ l: param('L', listText('items', (s) => s !== ''), '', 'l') }, {}).l;
  void notAPath;
  void notAnObjectName;
  void notNamespaces;

  // The checked way compiles: the target resolution's pod, the constructors' names.
  const target = targetOf(alert);
  if (target.kind === 'pod') await getPod(kube, target.pod, deadline);
  const namespace = namespaceName(raw);
  const name = objectName(raw);
  if (namespace !== undefined && name !== undefined) {
    await getPod(kube, { namespace, name }, deadline);
    await kube.request({ method: 'GET', path: apiPath`/api/v1/namespaces/${namespace}/pods/${name}`, op }, deadline);
  }
}
