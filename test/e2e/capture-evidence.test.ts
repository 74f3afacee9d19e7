/**
 * capture-evidence's built bundle on the real API server, as its own ServiceAccount. The suite's cluster has no
 * kubelet: what the API server answers for pod logs there is what is tested (a pod no node runs has an empty log; a
 * pod bound to a node the API server does not know has none it can read: 404), with the spec, status and alert saved all
 * the same; the permissions it needs and no more; retention against the API server's own creationTimestamps.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { evidenceSecrets, secretData } from './helpers/cases';
import { api, apiOk, createNamespace, createPod, deleteNamespaces, podEvents, recordedEvents, sharedCluster, uniqueName, type Cluster } from './helpers/cluster';
import { clusterRoleRules, DEPLOY_NAMESPACE, ensureDeployed, manifestObjects, serviceAccountToken, writeTokenKubeconfig } from './helpers/deploy';
import { assertRefusedOutsideRole, assertRoleGranted, canI } from './helpers/least-privilege';
import { ServedFunction, stopAllFunctions } from './helpers/runtime';
import { terminalShellAlert } from './helpers/sidekick';

const NAME = 'capture-evidence';
const SECRETS = `/api/v1/namespaces/${DEPLOY_NAMESPACE}/secrets`;
const EVIDENCE_LABELS = { 'app.kubernetes.io/managed-by': 'falco-response', 'falco-response.io/evidence': 'true' };

describe('e2e: capture-evidence on a real API server, as its own ServiceAccount (built bundle, Node 14 runtime)', function () {
  let cluster: Cluster;
  let namespace: string;
  let scratch: string;
  let kubeconfig: string;
  let token: string;

  before(async function () {
    cluster = sharedCluster();
    await ensureDeployed(cluster);
    namespace = await createNamespace(cluster, 'evidence');
    scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-e2e-evidence-'));
    token = await serviceAccountToken(cluster, NAME);
    kubeconfig = writeTokenKubeconfig(cluster, path.join(scratch, 'kubeconfig.json'), token);
  });

  after(async function () {
    await stopAllFunctions();
    if (namespace !== undefined) await deleteNamespaces(cluster, [namespace]);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  const start = (env: Record<string, string> = {}) => ServedFunction.start(NAME, { env: { KUBECONFIG: kubeconfig, POD_NAMESPACE: DEPLOY_NAMESPACE, ...env } });

  it('a pod no node runs: its logs are what the API server answers (empty), with spec, status and alert saved, and an Event naming the Secret', async function () {
    // Given
    const pod = uniqueName('ev-pending');
    const created = await createPod(cluster, namespace, pod);
    const fn = await start();

    // When
    const answer = await fn.post(terminalShellAlert(namespace, pod));

    // Then
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.status, 'done', answer.text);
    const [secret] = await evidenceSecrets(cluster, pod);
    assert.ok(secret !== undefined, `${answer.text}\n${fn.logs}`);
    assert.equal(secret.type, 'Opaque');
    assert.deepEqual(
      { uid: secret.metadata.labels['falco-response.io/pod-uid'], ns: secret.metadata.labels['falco-response.io/pod-namespace'], uuid: secret.metadata.labels['falco-response.io/alert-uuid'] },
      { uid: created.metadata.uid, ns: namespace, uuid: '3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11' },
    );
    const data = secretData(secret);
    const index = JSON.parse(data['evidence.json']);
    process.stdout.write(`      the API server's answer to the logs of a pod no node runs: ${JSON.stringify(index.logs)}\n`);
    assert.deepEqual(
      index.logs.map((l: any) => [l.container, l.log, l.status, l.bytes]),
      [
        ['app', 'current', 'saved', 0],
        ['app', 'previous', 'saved', 0],
      ],
    );
    assert.equal(JSON.parse(data['pod.json']).metadata.uid, created.metadata.uid);
    assert.equal(JSON.parse(data['pod.json']).status.phase, 'Pending');
    assert.equal(JSON.parse(data['alert.json']).rule, 'Terminal shell in container');
    // Recorded after the answer (lib/runner.ts): waited for.
    const events = await recordedEvents(cluster, namespace, pod, 'FalcoResponseEvidence');
    assert.equal(events.length, 1);
    assert.ok(events[0].message.includes(`to the Secret '${DEPLOY_NAMESPACE}/${secret.metadata.name}'`), events[0].message);

    // And the same alert again: the same Secret, nothing new
    const again = await fn.post(terminalShellAlert(namespace, pod));
    assert.equal(again.body.details.changed, false, again.text);
    assert.equal((await evidenceSecrets(cluster, pod)).length, 1);
    assert.equal((await podEvents(cluster, namespace, pod)).filter((e) => e.reason === 'FalcoResponseEvidence').length, 1);
    await fn.stop();
  });

  it('a pod bound to a node the API server does not know: each log is said to be unreadable, and why; the rest is saved', async function () {
    // Given
    const pod = uniqueName('ev-nonode');
    await createPod(cluster, namespace, pod, { app: 'e2e' }, { nodeName: 'e2e-no-such-node' });
    const fn = await start();

    // When
    const answer = await fn.post(terminalShellAlert(namespace, pod));

    // Then
    assert.equal(answer.body.status, 'done', answer.text);
    const [secret] = await evidenceSecrets(cluster, pod);
    const data = secretData(secret);
    const index = JSON.parse(data['evidence.json']);
    process.stdout.write(`      the API server's answer to the logs of a pod of an unknown node: ${JSON.stringify(index.logs)}\n`);
    assert.deepEqual(
      index.logs.map((l: any) => [l.container, l.log, l.status]),
      [
        ['app', 'current', 'unreadable'],
        ['app', 'previous', 'unreadable'],
      ],
    );
    // Seen on v1.20: the API server names the missing node as if it were a pod.
    for (const l of index.logs) {
      assert.equal(
        l.reason,
        `get the ${l.log === 'previous' ? 'previous log' : 'log'} of the container 'app' of the pod '${pod}' in the namespace '${namespace}' failed: the API server answered 404 NotFound: pods "e2e-no-such-node" not found`,
      );
    }
    assert.ok(data['pod.json'].includes('"nodeName": "e2e-no-such-node"'));
    assert.match(answer.body.message, /\(0 log\(s\) saved, 2 unreadable, /);
    assert.match(fn.logs, /2 log\(s\) of the pod .* could not be read: the evidence says why/);
    await fn.stop();
  });

  it('is granted exactly its roles: pods and pods/log cluster-wide, Secrets in its own namespace only, and may not read back what it wrote', async function () {
    // Given
    const pod = uniqueName('ev-probe');
    await createPod(cluster, namespace, pod);
    const rules = clusterRoleRules(NAME);
    const role = manifestObjects(`${NAME}.yaml`).find((o) => o.kind === 'Role');

    // When / Then: what the ClusterRole and the Role grant is allowed, where they grant it
    await assertRoleGranted(cluster, token, rules, namespace);
    await assertRoleGranted(cluster, token, role.rules, DEPLOY_NAMESPACE);
    await assertRefusedOutsideRole(cluster, token, rules, { namespace, pod, serviceAccount: NAME });
    const refused = [
      { verb: 'get', namespace: DEPLOY_NAMESPACE },
      { verb: 'watch', namespace: DEPLOY_NAMESPACE },
      { verb: 'update', namespace: DEPLOY_NAMESPACE },
      { verb: 'patch', namespace: DEPLOY_NAMESPACE },
      { verb: 'create', namespace },
      { verb: 'list', namespace },
      { verb: 'delete', namespace },
      { verb: 'list', namespace: 'kube-system' },
    ];
    for (const ask of refused) assert.equal(await canI(cluster, token, { ...ask, group: '', resource: 'secrets' }), false, `${ask.verb} secrets in ${ask.namespace}`);
    assert.equal(await canI(cluster, token, { verb: 'list', group: '', resource: 'secrets' }), false, 'list secrets cluster-wide');
    // A real call, not only a review: its own evidence stays unreadable to it
    const fn = await start();
    await fn.post(terminalShellAlert(namespace, pod));
    await fn.stop();
    const [secret] = await evidenceSecrets(cluster, pod);
    const read = await api(cluster, { method: 'GET', path: `${SECRETS}/${secret.metadata.name}` }, token);
    assert.equal(read.status, 403, JSON.stringify(read.body));
    const full = await api(cluster, { method: 'GET', path: SECRETS }, token);
    assert.equal(full.status, 200, 'the list it may make');
  });

  it('retention: deletes our evidence Secrets older than EVIDENCE_RETENTION_SECONDS by the API server\'s creationTimestamp, and no other', async function () {
    // Given: one of ours, one not labelled ours, both made now; then, after the retention has passed, a young one
    const secret = (name: string, labels: Record<string, string>) =>
      apiOk(cluster, { method: 'POST', path: SECRETS, body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, labels }, data: {} } });
    const old = uniqueName('ev-old');
    const other = uniqueName('ev-other');
    await secret(old, EVIDENCE_LABELS);
    await secret(other, { 'falco-response.io/evidence': 'true' });
    await new Promise((resolve) => setTimeout(resolve, 12000));
    const young = uniqueName('ev-young');
    await secret(young, EVIDENCE_LABELS);
    const pod = uniqueName('ev-retention');
    await createPod(cluster, namespace, pod);
    const fn = await start({ EVIDENCE_RETENTION_SECONDS: '10' });

    // When
    const answer = await fn.post(terminalShellAlert(namespace, pod));

    // Then
    assert.equal(answer.body.status, 'done', answer.text);
    assert.ok(answer.body.details.retention.removed >= 1, answer.text);
    const exists = async (name: string) => (await api(cluster, { method: 'GET', path: `${SECRETS}/${name}` })).status === 200;
    assert.deepEqual({ old: await exists(old), other: await exists(other), young: await exists(young) }, { old: false, other: true, young: true });
    assert.equal((await evidenceSecrets(cluster, pod)).length, 1, 'the evidence just written');
    await api(cluster, { method: 'DELETE', path: `${SECRETS}/${other}` });
    await fn.stop();
  });
});
