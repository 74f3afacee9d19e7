/**
 * delete-object's BUILT bundle, served by the built runtime under Node 14 (Kubeless nodejs14), deleting real objects
 * of a real API server after Falcosidekick-shaped POSTs of k8s_audit alerts, authenticated as its OWN generated
 * ServiceAccount: a RoleBinding, a ClusterRoleBinding (of a name with ':') and a Secret go; a recreated object
 * survives a stale alert; a forged alert (a time ahead of the clock) and bindings of protected subjects are left
 * alone, a backdoor shielded by a protected subject refused loudly, Kubernetes' own bindings kept, a binding changed
 * between its read and the DELETE kept (409 of the real server); without the shared secret it refuses every call; its ClusterRole is exactly what RESOURCES asks for. Then the
 * forwarder routes a k8s_audit alert to it, sending the secret.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { api, apiOk, createNamespace, deleteNamespaces, objectEvents, recordedObjectEvents, sharedCluster, uniqueName, waitFor, type Cluster } from './helpers/cluster';
import { clusterRoleRules, ensureDeployed, serviceAccountToken, writeTokenKubeconfig } from './helpers/deploy';
import { assertRefusedOutsideRole, assertRoleGranted } from './helpers/least-privilege';
import { FaultRelay } from './helpers/proxy';
import { ServedFunction, stopAllFunctions } from './helpers/runtime';
import { actionSuite } from './helpers/suite';
import { DEPLOY_NAMESPACE } from './helpers/deploy';
import { alertText } from '../helpers/fixtures';

const NAME = 'delete-object';
/** The shared secret (INBOUND_SECRET) it is served with, and the header its callers send. */
const SECRET = 'e2e-delete-object-secret';
const BEARER = `Bearer ${SECRET}`;
const RBAC = '/apis/rbac.authorization.k8s.io/v1';

/** The k8saudit-eks fixture, about another object at another time; `extra` adds output fields (the json plugin's uid). */
function auditAlert(resource: string, namespace: string | null, name: string, time: Date, extra: Record<string, string> = {}): string {
  const alert = JSON.parse(alertText('k8saudit-serviceaccount-created')) as Record<string, any>;
  alert.rule = 'Attach to cluster-admin Role';
  alert.priority = 'Warning';
  // Falco's time: RFC 3339 with nanoseconds.
  alert.time = time.toISOString().replace('Z', '000000Z');
  alert.output_fields = {
    ...alert.output_fields,
    'evt.time': time.getTime() * 1e6,
    'ka.target.resource': resource,
    'ka.target.namespace': namespace,
    'ka.target.name': name,
    'ka.verb': 'create',
    'ka.user.name': 'e2e-attacker',
    ...extra,
  };
  return JSON.stringify(alert);
}

const paths = {
  rolebinding: (ns: string, name: string) => `${RBAC}/namespaces/${ns}/rolebindings/${encodeURIComponent(name)}`,
  clusterrolebinding: (name: string) => `${RBAC}/clusterrolebindings/${encodeURIComponent(name)}`,
  secret: (ns: string, name: string) => `/api/v1/namespaces/${ns}/secrets/${name}`,
};

async function createRoleBinding(cluster: Cluster, namespace: string, name: string): Promise<any> {
  return apiOk(cluster, {
    method: 'POST',
    path: `${RBAC}/namespaces/${namespace}/rolebindings`,
    body: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ kind: 'ServiceAccount', name: 'default', namespace }],
    },
  });
}

async function createClusterRoleBinding(cluster: Cluster, name: string, subjects: readonly Record<string, string>[] = [{ kind: 'User', name: 'e2e-attacker' }]): Promise<any> {
  return apiOk(cluster, {
    method: 'POST',
    path: `${RBAC}/clusterrolebindings`,
    body: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects,
    },
  });
}

async function createSecret(cluster: Cluster, namespace: string, name: string): Promise<any> {
  return apiOk(cluster, {
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/secrets`,
    body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, stringData: { token: 'e2e' } },
  });
}

async function statusOf(cluster: Cluster, objectPath: string): Promise<number> {
  return (await api(cluster, { method: 'GET', path: objectPath })).status;
}

describe('e2e: delete-object on a real API server, as its own ServiceAccount (built bundle, Node 14 runtime)', function () {
  let cluster: Cluster;
  let namespace: string;
  let scratch: string;
  let fn: ServedFunction;
  const clusterWide: string[] = [];

  before(async function () {
    cluster = sharedCluster();
    await ensureDeployed(cluster);
    namespace = await createNamespace(cluster, 'delobj');
    scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-e2e-delobj-'));
    const kubeconfig = writeTokenKubeconfig(cluster, path.join(scratch, 'delete-object.kubeconfig.json'), await serviceAccountToken(cluster, NAME));
    fn = await ServedFunction.start(NAME, { env: { KUBECONFIG: kubeconfig, RULES: '*', INBOUND_SECRET: SECRET } });
  });

  after(async function () {
    await stopAllFunctions();
    if (cluster !== undefined) await Promise.all(clusterWide.map((name) => api(cluster, { method: 'DELETE', path: paths.clusterrolebinding(name) })));
    if (namespace !== undefined) await deleteNamespaces(cluster, [namespace]);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  it('deletes a RoleBinding, a ClusterRoleBinding named with ":" and a Secret that k8s_audit alerts name, and a repeat finds them gone', async function () {
    // Given: the three objects, as an attacker would create them
    const binding = uniqueName('rb');
    const clusterBinding = `e2e:delobj:${uniqueName('crb')}`;
    const secret = uniqueName('secret');
    clusterWide.push(clusterBinding);
    const created = [
      await createRoleBinding(cluster, namespace, binding),
      await createClusterRoleBinding(cluster, clusterBinding),
      await createSecret(cluster, namespace, secret),
    ];
    const now = new Date();
    const alerts: [string, string, string | null, string, string, string][] = [
      ['rolebindings', 'RoleBinding', namespace, binding, paths.rolebinding(namespace, binding), `the RoleBinding '${binding}' in the namespace '${namespace}'`],
      ['clusterrolebindings', 'ClusterRoleBinding', null, clusterBinding, paths.clusterrolebinding(clusterBinding), `the ClusterRoleBinding '${clusterBinding}'`],
      ['secrets', 'Secret', namespace, secret, paths.secret(namespace, secret), `the Secret '${secret}' in the namespace '${namespace}'`],
    ];

    for (const [i, [resource, kind, ns, name, objectPath, described]] of alerts.entries()) {
      // When
      const answer = await fn.post(auditAlert(resource, ns, name, now), BEARER);

      // Then: done, by the creationTimestamp (the k8saudit plugin carries no uid), and gone from the API server
      assert.equal(answer.status, 200, `${answer.text}\n${fn.logs}`);
      const uid = created[i].metadata.uid as string;
      assert.deepEqual(answer.body, {
        status: 'done',
        action: NAME,
        target: { resource, ...(ns === null ? {} : { namespace: ns }), name },
        dryRun: false,
        message: `deleted ${described} (uid ${uid}, created at ${created[i].metadata.creationTimestamp as string}, no later than the audit event)`,
        details: {
          touched: [{ kind, ...(ns === null ? {} : { namespace: ns }), name, changed: true }],
          changed: true,
          // Queued, recorded after the answer (lib/runner.ts): read below once it is there.
          eventRecorded: 'queued',
          sameObjectBy: 'creationTimestamp',
          uid,
        },
      });
      assert.equal(await statusOf(cluster, objectPath), 404, `${described} is still there`);

      // And (the fixture carries no uuid): one Event on the deleted object (its uid), in its namespace, a cluster-wide one's in default (lib/audit.ts)
      const eventsIn = ns ?? 'default';
      const events = await recordedObjectEvents(cluster, eventsIn, kind, name, 'FalcoResponseDeleted');
      assert.equal(events.length, 1, fn.logs);
      const [event] = events;
      assert.deepEqual(event.involvedObject, {
        apiVersion: created[i].apiVersion,
        kind,
        name,
        ...(ns === null ? {} : { namespace: ns }),
        uid,
      });
      assert.equal(event.metadata.namespace, eventsIn);
      assert.equal(event.source.component, `falco-response/${NAME}`);
      assert.equal(event.message, `${NAME} deleted ${described} after the Falco rule "Attach to cluster-admin Role" (priority Warning, alert uuid none)`);

      // And: the same alert again (Falcosidekick gives it a new event-id) finds it gone, and records no second Event
      const repeat = await fn.post(auditAlert(resource, ns, name, now), BEARER);
      assert.deepEqual([repeat.status, repeat.body.status, repeat.body.code, repeat.body.reason], [200, 'skipped', 'object-gone', `${described} is already gone`]);
      // A skip queues no Event: their number is read at once.
      assert.equal((await objectEvents(cluster, eventsIn, kind, name)).filter((e) => e.reason === 'FalcoResponseDeleted').length, 1);
    }
  });

  it('leaves alone an object recreated with a new uid after a stale alert, by its creationTimestamp and by the uid the alert carries', async function () {
    // Given: a Secret an alert saw, deleted and created again a second later (creationTimestamp counts whole seconds)
    const secret = uniqueName('recreated');
    const first = await createSecret(cluster, namespace, secret);
    const seenAt = new Date(Date.parse(first.metadata.creationTimestamp as string) + 500);
    await apiOk(cluster, { method: 'DELETE', path: paths.secret(namespace, secret) });
    await waitFor('a second past the first creation', () => Promise.resolve(Date.now() >= seenAt.getTime() + 1000 ? true : undefined), 5000);
    const second = await createSecret(cluster, namespace, secret);
    assert.notEqual(second.metadata.uid, first.metadata.uid);

    // When: the stale alert, without then with the event's uid (a rule output adding %json.value[/responseObject/metadata/uid])
    const byTime = await fn.post(auditAlert('secrets', namespace, secret, seenAt), BEARER);
    const byUid = await fn.post(auditAlert('secrets', namespace, secret, new Date(), { 'json.value[/responseObject/metadata/uid]': first.metadata.uid as string }), BEARER);

    // Then: both skipped, and the new Secret is there
    const described = `the Secret '${secret}' in the namespace '${namespace}'`;
    assert.deepEqual([byTime.status, byTime.body.status, byTime.body.code], [200, 'skipped', 'object-gone'], byTime.text);
    assert.equal(
      byTime.body.reason,
      `${described} is not the object the audit event saw (it was created at ${second.metadata.creationTimestamp as string}, after the audit event (${seenAt.toISOString().replace('Z', '000000Z')})): it is left alone`,
    );
    assert.deepEqual([byUid.status, byUid.body.code], [200, 'object-gone'], byUid.text);
    assert.equal(byUid.body.reason, `${described} is not the object the audit event saw (the audit event saw uid ${first.metadata.uid as string}, the object now has uid ${second.metadata.uid as string}): it is left alone`);
    const still = await apiOk(cluster, { method: 'GET', path: paths.secret(namespace, secret) });
    assert.equal(still.metadata.uid, second.metadata.uid);

    // And: with the live object's uid the alert is about this one, and it goes (the uid is the DELETE's precondition)
    const current = await fn.post(auditAlert('secrets', namespace, secret, new Date(), { 'json.value[/responseObject/metadata/uid]': second.metadata.uid as string }), BEARER);
    assert.deepEqual([current.body.status, current.body.details?.sameObjectBy], ['done', 'uid'], current.text);
    assert.equal(await statusOf(cluster, paths.secret(namespace, secret)), 404);
  });

  it('leaves cluster-critical names and other resources alone, before any call', async function () {
    const critical = await fn.post(auditAlert('clusterrolebindings', null, 'system:basic-user', new Date()), BEARER);
    assert.deepEqual([critical.body.status, critical.body.code], ['skipped', 'cluster-critical'], critical.text);
    assert.equal(await statusOf(cluster, paths.clusterrolebinding('system:basic-user')), 200);
    const role = await fn.post(auditAlert('clusterroles', null, 'view', new Date()), BEARER);
    assert.deepEqual([role.body.status, role.body.code], ['skipped', 'no-object'], role.text);
  });

  it('refuses a forged alert, no uid and a time ahead of the clock, naming a live RoleBinding: nothing is read or deleted', async function () {
    // Given: a RoleBinding that exists (created a moment ago: the old creationTimestamp check let any such one go)
    const binding = uniqueName('forged');
    await createRoleBinding(cluster, namespace, binding);
    const ahead = new Date(Date.now() + 3600 * 1000);

    // When
    const answer = await fn.post(auditAlert('rolebindings', namespace, binding, ahead), BEARER);

    // Then
    assert.deepEqual([answer.status, answer.body.status, answer.body.code], [200, 'skipped', 'event-in-future'], answer.text);
    assert.equal(
      answer.body.reason,
      `the alert's time "${ahead.toISOString().replace('Z', '000000Z')}" is more than the 60 seconds of clock skew allowed ahead of this function's clock: no audit event happened then, and nothing is deleted`,
    );
    assert.equal(await statusOf(cluster, paths.rolebinding(namespace, binding)), 200);
  });

  it('leaves alone the bindings that keep defenders running, refuses a backdoor shielded by a defender, and deletes backdoors to everyone and to the nodes', async function () {
    // Given: what a falco install binds (its ServiceAccount in the protected namespace falco), a backdoor that adds
    // the scheduler's user next to its own, one that grants every node, and one that grants every authenticated user
    const [defender, shielded, nodes, backdoor] = ['falco', 'shielded', 'nodes', 'backdoor'].map((what) => `e2e-${what}-${uniqueName('crb')}`);
    clusterWide.push(defender, shielded, nodes, backdoor);
    await createClusterRoleBinding(cluster, defender, [{ kind: 'ServiceAccount', name: 'falco', namespace: 'falco' }]);
    await createClusterRoleBinding(cluster, shielded, [{ kind: 'User', name: 'e2e-attacker' }, { kind: 'User', name: 'system:kube-scheduler', apiGroup: 'rbac.authorization.k8s.io' }]);
    await createClusterRoleBinding(cluster, nodes, [{ kind: 'Group', name: 'system:nodes', apiGroup: 'rbac.authorization.k8s.io' }]);
    await createClusterRoleBinding(cluster, backdoor, [{ kind: 'Group', name: 'system:authenticated', apiGroup: 'rbac.authorization.k8s.io' }]);

    // When
    const [kept, refused, deletedNodes, deleted] = [
      await fn.post(auditAlert('clusterrolebindings', null, defender, new Date()), BEARER),
      await fn.post(auditAlert('clusterrolebindings', null, shielded, new Date()), BEARER),
      await fn.post(auditAlert('clusterrolebindings', null, nodes, new Date()), BEARER),
      await fn.post(auditAlert('clusterrolebindings', null, backdoor, new Date()), BEARER),
    ];

    // Then
    assert.deepEqual([kept.body.status, kept.body.code, kept.body.reason], [
      'skipped',
      'protected-subject',
      `the ClusterRoleBinding '${defender}' is left alone: it binds the ServiceAccount "falco" of the protected namespace "falco"`,
    ]);
    assert.deepEqual([refused.status, refused.body.status, refused.body.code], [500, 'failed', 'shielded-binding'], refused.text);
    assert.match(refused.body.error, new RegExp(`^the ClusterRoleBinding '${shielded}' is not deleted: of its 2 subjects, 1 is protected \\(the User "system:kube-scheduler", one of Kubernetes' own identities\\) and 1 is not;`));
    assert.equal(await statusOf(cluster, paths.clusterrolebinding(defender)), 200);
    assert.equal(await statusOf(cluster, paths.clusterrolebinding(shielded)), 200);
    assert.equal(deletedNodes.body.status, 'done', deletedNodes.text);
    assert.equal(await statusOf(cluster, paths.clusterrolebinding(nodes)), 404);
    assert.equal(deleted.body.status, 'done', deleted.text);
    assert.equal(await statusOf(cluster, paths.clusterrolebinding(backdoor)), 404);
  });

  it("keeps every binding of Kubernetes' own (the API server's defaults) by its name or its bootstrap label, whatever its subjects", async function () {
    // A dry run, so that a binding it would not keep is reported, not deleted from the shared cluster.
    const dry = await ServedFunction.start(NAME, {
      env: { KUBECONFIG: writeTokenKubeconfig(cluster, path.join(scratch, 'own.kubeconfig.json'), await serviceAccountToken(cluster, NAME)), RULES: '*', DRY_RUN: 'true', INBOUND_SECRET: SECRET },
    });
    try {
      const own = (await apiOk(cluster, { method: 'GET', path: `${RBAC}/clusterrolebindings?labelSelector=kubernetes.io%2Fbootstrapping` })).items as any[];
      assert.ok(own.length >= 10, `only ${own.length} bootstrap ClusterRoleBindings`);
      const answers: string[] = [];
      for (const binding of own) {
        const answer = await dry.post(auditAlert('clusterrolebindings', null, binding.metadata.name as string, new Date()), BEARER);
        answers.push(`${binding.metadata.name as string}: ${answer.body.status as string} ${(answer.body.code as string | undefined) ?? ''}`);
      }
      assert.deepEqual(answers.filter((a) => !a.endsWith(': skipped cluster-critical')), [], answers.join('\n'));
      // Among them the bindings to names that protect no binding of another name, and to the control-plane users.
      const subjects = own.flatMap((b) => ((b.subjects ?? []) as { name: string }[]).map((x) => x.name));
      for (const name of ['system:masters', 'system:authenticated', 'system:unauthenticated', 'system:kube-controller-manager', 'system:kube-scheduler', 'system:kube-proxy']) {
        assert.ok(subjects.includes(name), `no bootstrap binding binds ${name}: ${[...new Set(subjects)].join(', ')}`);
      }
    } finally {
      await dry.stop();
    }
  });

  it('does not delete a binding changed between its read and the DELETE (the precondition on the resourceVersion read): failed, object-changed', async function () {
    // Given: a relay in front of the API server that holds the DELETE until a subject was added to the binding
    const relay = await FaultRelay.start(new URL(cluster.server), cluster.ca);
    const name = `e2e-raced-${uniqueName('crb')}`;
    clusterWide.push(name);
    const created = await createClusterRoleBinding(cluster, name, [{ kind: 'User', name: 'e2e-attacker' }]);
    const raced = await ServedFunction.start(NAME, {
      env: { KUBECONFIG: writeTokenKubeconfig(cluster, path.join(scratch, 'raced.kubeconfig.json'), await serviceAccountToken(cluster, NAME), relay.url), RULES: '*', INBOUND_SECRET: SECRET },
    });
    try {
      // Run when the DELETE arrives, so after the function's read: a subject added under its feet.
      const addSubject = async () => {
        const current = await apiOk(cluster, { method: 'GET', path: paths.clusterrolebinding(name) });
        await apiOk(cluster, { method: 'PUT', path: paths.clusterrolebinding(name), body: { ...current, subjects: [...current.subjects, { kind: 'User', name: 'e2e-second' }] } });
      };
      relay.inject({ method: 'DELETE', path: /clusterrolebindings\//, fault: (n) => (n === 1 ? { kind: 'hold', until: addSubject() } : undefined) });

      // When
      const answer = await raced.post(auditAlert('clusterrolebindings', null, name, new Date()), BEARER);

      // Then: the real API server refused the DELETE (409), and the answer says so
      assert.deepEqual([answer.status, answer.body.status, answer.body.code], [500, 'failed', 'object-changed'], answer.text);
      assert.equal(
        answer.body.error,
        `the ClusterRoleBinding '${name}' was not deleted: it changed, or another object took its name, since it was read and checked (uid ${created.metadata.uid as string}, resourceVersion "${created.metadata.resourceVersion as string}"), and the API server refused the DELETE (409); send the alert again to check it anew`,
      );
      assert.deepEqual(relay.requestsTo('DELETE', /clusterrolebindings\//).map((r) => r.upstreamStatus), [409]);
      assert.deepEqual(relay.errors, []);
      assert.equal(await statusOf(cluster, paths.clusterrolebinding(name)), 200);
    } finally {
      await raced.stop();
      await relay.stop();
    }
  });

  it('without the shared secret refuses every call (500, naming the Secret) and deletes nothing; with it, a call without the header gets 401', async function () {
    // Given: the function as the manifests run it when the Secret falco-response-shared-secret does not exist
    const secret = uniqueName('unauth');
    await createSecret(cluster, namespace, secret);
    const open = await ServedFunction.start(NAME, { env: { KUBECONFIG: writeTokenKubeconfig(cluster, path.join(scratch, 'open.kubeconfig.json'), await serviceAccountToken(cluster, NAME)), RULES: '*' } });

    // When: a caller without a token (there is none to send), and one to the function that has the secret, without it
    const refused = await open.post(auditAlert('secrets', namespace, secret, new Date()));
    await open.stop();
    const unauthorized = await fn.post(auditAlert('secrets', namespace, secret, new Date()));

    // Then
    assert.deepEqual([refused.status, refused.body], [
      500,
      { status: 'failed', error: 'the function refuses every call: it requires the shared secret (the Secret falco-response-shared-secret, key token) and none is configured' },
    ]);
    assert.match(open.logs, /"message":"no shared secret: the function refuses every call, because it deletes the object any alert names[^"]*create the Secret falco-response-shared-secret with the key token/);
    assert.deepEqual([unauthorized.status, unauthorized.body.status], [401, 'unauthorized']);
    assert.equal(await statusOf(cluster, paths.secret(namespace, secret)), 200);
  });

  it('dry run: says what would go, and the object stays', async function () {
    const secret = uniqueName('dry');
    await createSecret(cluster, namespace, secret);
    const token = await serviceAccountToken(cluster, NAME);
    const kubeconfig = writeTokenKubeconfig(cluster, path.join(scratch, 'dry.kubeconfig.json'), token);
    const dry = await ServedFunction.start(NAME, { env: { KUBECONFIG: kubeconfig, RULES: '*', DRY_RUN: 'true', INBOUND_SECRET: SECRET } });
    const answer = await dry.post(auditAlert('secrets', namespace, secret, new Date()), BEARER);
    await dry.stop();
    assert.deepEqual([answer.body.status, answer.body.dryRun], ['done', true], answer.text);
    assert.match(answer.body.message, new RegExp(`^would delete the Secret '${secret}' in the namespace '${namespace}' \\(uid `));
    assert.equal(await statusOf(cluster, paths.secret(namespace, secret)), 200);
  });

  it('is granted exactly get and delete on each default resource and events create: each allowed, and calls outside refused 403', async function () {
    // Given
    const token = await serviceAccountToken(cluster, NAME);
    const rules = clusterRoleRules(NAME);

    // Then: the generated role is the RESOURCES default's, no more
    assert.deepEqual(rules, [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['delete', 'get'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['delete', 'get'] },
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['delete', 'get'] },
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: ['delete', 'get'] },
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['delete', 'get'] },
    ]);
    await assertRoleGranted(cluster, token, rules, namespace);
    const refused = await assertRefusedOutsideRole(cluster, token, rules, { namespace, pod: uniqueName('no-pod'), serviceAccount: NAME });
    assert.ok(refused.length >= 20, `only ${refused.length} calls were probed`);
    // And what it could be configured for but is not by default: ClusterRoles, pods, namespaces, nodes, list of secrets
    for (const call of [
      { method: 'DELETE' as const, path: `${RBAC}/clusterroles/view` },
      { method: 'GET' as const, path: `${RBAC}/clusterroles/view` },
      { method: 'DELETE' as const, path: `/api/v1/namespaces/${namespace}/pods/x` },
      { method: 'GET' as const, path: '/api/v1/nodes/x' },
      { method: 'GET' as const, path: `/api/v1/namespaces/${namespace}/secrets` },
      { method: 'DELETE' as const, path: `/api/v1/namespaces/${namespace}/secrets` },
    ]) {
      assert.equal((await api(cluster, call, token)).status, 403, `${call.method} ${call.path}`);
    }
  });
});

describe('e2e: the forwarder routes a k8s_audit alert to delete-object, sending the shared secret, on a real API server', function () {
  const suite = actionSuite('delobj-fwd');
  let deleteObject: ServedFunction;
  let forwarder: ServedFunction;

  before(async function () {
    deleteObject = await suite.serve(NAME, { INBOUND_SECRET: SECRET });
    const routesFile = path.join(suite.scratch, 'routes.json');
    // The README's route: a binding to cluster-admin undone.
    writeFileSync(routesFile, JSON.stringify({ routes: [{ name: 'rbac-backdoor', description: 'undo a binding to cluster-admin', rules: ['Attach to cluster-admin Role'], actions: [NAME] }] }));
    forwarder = await ServedFunction.start('forwarder', {
      env: { ROUTES_FILE: routesFile, ACTION_ENDPOINTS: JSON.stringify({ [NAME]: deleteObject.url }), POD_NAMESPACE: DEPLOY_NAMESPACE, OUTBOUND_SECRET: SECRET },
    });
  });

  it('the object named goes, and the answer says what delete-object did', async function () {
    // Given: a RoleBinding an attacker made, and the alert about it (the k8saudit-eks fixture's shape)
    const binding = uniqueName('routed');
    const created = await createRoleBinding(suite.cluster, suite.namespace, binding);

    // When: Falcosidekick posts to the forwarder (its kubeless output: no header)
    const answer = await forwarder.post(auditAlert('rolebindings', suite.namespace, binding, new Date()));

    // Then
    const described = `the RoleBinding '${binding}' in the namespace '${suite.namespace}'`;
    assert.equal(answer.status, 200, `${answer.text}\n${forwarder.logs}`);
    assert.equal(answer.body.status, 'done', answer.text);
    assert.deepEqual(answer.body.routes, ['rbac-backdoor']);
    const [result] = answer.body.results;
    assert.deepEqual([answer.body.results.length, result.action, result.status, result.httpStatus, result.ok], [1, NAME, 'done', 200, true]);
    assert.equal(
      result.message,
      `deleted ${described} (uid ${created.metadata.uid as string}, created at ${created.metadata.creationTimestamp as string}, no later than the audit event)`,
    );
    assert.equal(await statusOf(suite.cluster, paths.rolebinding(suite.namespace, binding)), 404);
  });

  it('a protected one (a Secret in kube-system) through the forwarder: skipped, nothing deleted', async function () {
    // Given: a Secret of the protected namespace kube-system
    const secret = uniqueName('protected');
    await createSecret(suite.cluster, 'kube-system', secret);
    try {
      // When
      const answer = await forwarder.post(auditAlert('secrets', 'kube-system', secret, new Date()));

      // Then
      assert.equal(answer.status, 200, answer.text);
      const [result] = answer.body.results;
      assert.deepEqual([result.action, result.status, result.httpStatus], [NAME, 'skipped', 200], answer.text);
      assert.equal(result.message, `the namespace 'kube-system' is protected (PROTECTED_NAMESPACES): the Secret '${secret}' is left alone`);
      assert.equal(await statusOf(suite.cluster, paths.secret('kube-system', secret)), 200);
    } finally {
      await api(suite.cluster, { method: 'DELETE', path: paths.secret('kube-system', secret) });
    }
  });

  it("without the secret in the forwarder's OUTBOUND_SECRET, delete-object refuses the call and the forwarder says so", async function () {
    const binding = uniqueName('nosecret');
    await createRoleBinding(suite.cluster, suite.namespace, binding);
    const routesFile = path.join(suite.scratch, 'routes-nosecret.json');
    writeFileSync(routesFile, JSON.stringify({ routes: [{ name: 'rbac-backdoor', rules: ['Attach to cluster-admin Role'], actions: [NAME] }] }));
    const bare = await ServedFunction.start('forwarder', { env: { ROUTES_FILE: routesFile, ACTION_ENDPOINTS: JSON.stringify({ [NAME]: deleteObject.url }), POD_NAMESPACE: DEPLOY_NAMESPACE } });

    const answer = await bare.post(auditAlert('rolebindings', suite.namespace, binding, new Date()));
    await bare.stop();

    assert.deepEqual([answer.status, answer.body.status], [502, 'actions-failed'], answer.text);
    assert.deepEqual([answer.body.results[0].status, answer.body.results[0].httpStatus], ['unauthorized', 401]);
    assert.equal(await statusOf(suite.cluster, paths.rolebinding(suite.namespace, binding)), 200);
  });
});
