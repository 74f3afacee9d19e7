/**
 * capture-evidence on a real kubelet: the logs it saves are the ones the kubelet keeps of real containers (through the
 * API server's pods/log proxy), the current one and the one before a restart, of an init container, a container that
 * crashed once and a sidecar. Then the README's evidence-then-delete route, through the forwarder: the evidence is
 * saved while the pod still runs, the pod is deleted, and the evidence outlives it.
 */
import { strict as assert } from 'assert';
import { readFileSync } from 'fs';
import * as path from 'path';
import { ALERT_UUID_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL, secretName } from '../../functions/capture-evidence/evidence';
import { terminalShellAlert } from '../e2e/helpers/sidekick';
import { alert } from '../helpers/fixtures';
import { deployedOnce, FUNCTIONS_NAMESPACE, NODE_IMAGE, REPO, resultsOf, rolledOut, sendFromClient, WORKLOAD_NAMESPACE, type Deployed } from './helpers/deploy';
import { getJson, kubectl, kubectlOk, recordedEvents, waitFor } from './helpers/node';
import { editRoutes, restoreRoutes, routesText, untilEveryForwarder } from './helpers/routes';

const URL = `http://capture-evidence.${FUNCTIONS_NAMESPACE}.svc.cluster.local:8080`;
/** The fixture's uuid (test/fixtures/alerts/terminal-shell.json), which terminalShellAlert keeps. */
const UUID = alert('terminal-shell').uuid as string;

/**
 * The app container counts its runs in an emptyDir (which outlives its containers), writes two lines naming the run,
 * and on its first run exits 3: the kubelet restarts it (restartPolicy Always), and the second run stays up. So the
 * current log is run 2's and the previous one run 1's, and nothing restarts any more.
 */
const APP_JS = `
const fs = require('fs');
let run = 1;
try { run = Number(fs.readFileSync('/state/runs', 'utf8')) + 1; } catch (e) {}
fs.writeFileSync('/state/runs', String(run));
console.log('evidence app: run ' + run + ' line one');
console.log('evidence app: run ' + run + ' line two');
if (run === 1) process.exitCode = 3; else setInterval(() => {}, 1e9);
`;
const appLines = (run: number) => `evidence app: run ${run} line one\nevidence app: run ${run} line two\n`;
const SETUP_LINE = 'evidence setup: done\n';
const SIDECAR_LINE = 'evidence sidecar: up\n';

function crashOncePod(name: string): any {
  const container = (n: string, script: string, mounts: any[] = []) => ({
    name: n,
    image: NODE_IMAGE,
    imagePullPolicy: 'IfNotPresent',
    command: ['node', '-e', script],
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    resources: { requests: { cpu: '5m', memory: '16Mi' }, limits: { memory: '64Mi' } },
    volumeMounts: mounts,
  });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: WORKLOAD_NAMESPACE, labels: { app: 'evidence' } },
    spec: {
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 },
      initContainers: [container('setup', `console.log(${JSON.stringify(SETUP_LINE.trimEnd())})`)],
      containers: [
        container('app', APP_JS, [{ name: 'state', mountPath: '/state' }]),
        container('sidecar', `console.log(${JSON.stringify(SIDECAR_LINE.trimEnd())}); setInterval(() => {}, 1e9)`),
      ],
      volumes: [{ name: 'state', emptyDir: {} }],
    },
  };
}

/** Starts the pod and waits until its app container restarted once and runs again, every container Ready. */
async function crashedOnce(name: string): Promise<any> {
  await kubectlOk(['apply', '-f', '-'], JSON.stringify(crashOncePod(name)));
  return waitFor(`${name}: the app container restarted and running again`, async () => {
    const pod = await getJson(['pod', name, '-n', WORKLOAD_NAMESPACE]);
    const statuses = (pod.status.containerStatuses ?? []) as any[];
    const app = statuses.find((s) => s.name === 'app');
    return app?.restartCount >= 1 && app.state.running !== undefined && statuses.length === 2 && statuses.every((s) => s.ready) ? pod : undefined;
  }, 120000, 500);
}

/** The evidence Secrets of a pod, as the README lists them. */
async function evidenceSecrets(pod: string): Promise<any[]> {
  return (await getJson(['secrets', '-n', FUNCTIONS_NAMESPACE, '-l', `falco-response.io/evidence=true,${POD_NAME_LABEL}=${pod}`])).items;
}

const decoded = (secret: any): Record<string, string> =>
  Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

/** What the kubelet itself answers for a log, through the API server (kubectl logs). */
async function kubeletLog(pod: string, container: string, previous: boolean): Promise<string> {
  return kubectlOk(['logs', '-n', WORKLOAD_NAMESPACE, pod, '-c', container, ...(previous ? ['--previous'] : [])]);
}

/** The JSON of the README's "Evidence first, then delete the pod" route, as written there. */
function readmeEvidenceRoute(): any {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('#### Evidence first, then delete the pod'));
  const block = /```json\n([\s\S]*?)\n```/.exec(section);
  if (block === null) throw new Error('README.md: no JSON block under "Evidence first, then delete the pod"');
  return JSON.parse(block[1]);
}

/**
 * Every saved evidence of a crash-once pod: the current and previous log of each container as the kubelet keeps
 * them (`expected`: the log keys and their text), the pod as read, the alert, the labels, the caps.
 */
function assertEvidence(secret: any, pod: any, expected: Record<string, string>): { index: any; kept: any } {
  const name = pod.metadata.name as string;
  assert.equal(secret.metadata.name, secretName(UUID, pod.metadata.uid));
  assert.equal(secret.type, 'Opaque');
  assert.deepEqual(
    [ALERT_UUID_LABEL, POD_NAMESPACE_LABEL, POD_NAME_LABEL, POD_UID_LABEL].map((l) => secret.metadata.labels[l]),
    [UUID, WORKLOAD_NAMESPACE, name, pod.metadata.uid],
  );
  const data = decoded(secret);
  assert.deepEqual(Object.keys(data).sort(), ['alert.json', 'evidence.json', 'pod.json', ...Object.keys(expected)].sort());
  for (const [key, text] of Object.entries(expected)) assert.equal(data[key], text, `${key} as saved`);
  const index = JSON.parse(data['evidence.json']);
  assert.deepEqual(
    index.logs.map((l: any) => [l.container, l.role, l.log, l.status, l.key ?? null]),
    [
      ['setup', 'init', 'current', 'saved', 'setup.log'],
      ['setup', 'init', 'previous', 'none', null],
      ['app', 'container', 'current', 'saved', 'app.log'],
      ['app', 'container', 'previous', 'saved', 'app.previous.log'],
      ['sidecar', 'container', 'current', 'saved', 'sidecar.log'],
      ['sidecar', 'container', 'previous', 'none', null],
    ],
    data['evidence.json'],
  );
  assert.deepEqual(index.pod, { namespace: WORKLOAD_NAMESPACE, name, uid: pod.metadata.uid });
  assert.equal(index.uuid, UUID);
  // The caps stated: the manifest's LOG_TAIL_LINES and LOG_LIMIT_BYTES, and what each log got of them
  assert.deepEqual([index.caps.tailLines, index.caps.limitBytes, index.caps.limitBytesPerLog], [1000, 131072, 131072]);
  assert.deepEqual(index.cuts, []);
  const kept = JSON.parse(data['pod.json']);
  assert.equal(kept.metadata.uid, pod.metadata.uid);
  assert.deepEqual(kept.spec.containers.map((c: any) => c.name), ['app', 'sidecar']);
  assert.equal(kept.spec.initContainers[0].name, 'setup');
  assert.equal(kept.status.containerStatuses.find((s: any) => s.name === 'app').restartCount, 1);
  assert.equal(kept.status.containerStatuses.find((s: any) => s.name === 'app').lastState.terminated.exitCode, 3);
  assert.equal(kept.metadata.managedFields, undefined);
  const saved = JSON.parse(data['alert.json']);
  assert.deepEqual([saved.uuid, saved.rule, saved.output_fields['k8s.pod.name'], saved.output_fields['k8s.ns.name']], [UUID, 'Terminal shell in container', name, WORKLOAD_NAMESPACE]);
  return { index, kept };
}

/** A pod whose app container fails every run (a crash loop), and one whose init container never ends (its app not started). */
const CRASH_LOOP_JS = "console.log('evidence loop: run ' + Date.now()); process.exitCode = 3";
function notRunningPods(): any[] {
  const loop = crashOncePod('evidence-loop');
  loop.spec.initContainers = [];
  loop.spec.containers = [{ ...loop.spec.containers[0], command: ['node', '-e', CRASH_LOOP_JS], volumeMounts: [] }];
  loop.spec.volumes = [];
  const waiting = crashOncePod('evidence-waiting');
  waiting.spec.initContainers[0].command = ['node', '-e', `console.log(${JSON.stringify(SETUP_LINE.trimEnd())}); setInterval(() => {}, 1e9)`];
  waiting.spec.containers = [waiting.spec.containers[1]];
  return [loop, waiting];
}

const statusOf = (pod: any, list: string, container: string) => ((pod.status[list] ?? []) as any[]).find((s) => s.name === container);

const EXPECTED_LOGS = { 'setup.log': SETUP_LINE, 'app.log': appLines(2), 'app.previous.log': appLines(1), 'sidecar.log': SIDECAR_LINE };

describe('node: capture-evidence saves what the kubelet kept of a pod that restarted', function () {
  this.timeout(300000);
  let d: Deployed;
  let originalRoutes: string | undefined;
  const pods = ['evidence-alone', 'evidence-route', 'evidence-loop', 'evidence-waiting'];

  before(async function () {
    this.timeout(600000);
    d = await deployedOnce();
    await rolledOut(FUNCTIONS_NAMESPACE, 'capture-evidence');
  });

  after(async function () {
    this.timeout(180000);
    if (originalRoutes !== undefined) {
      await restoreRoutes(originalRoutes);
      await untilEveryForwarder(d, 'capture-evidence', false);
    }
    await kubectl(['delete', 'pod', ...pods, '-n', WORKLOAD_NAMESPACE, '--ignore-not-found', '--wait=false']);
  });

  it('holds the current and previous log of every container, the pod, the alert, its labels and caps; the Event on the pod names it', async () => {
    // Given a running pod whose app container crashed once (its previous log: run 1), an init container and a sidecar
    const name = pods[0];
    const pod = await crashedOnce(name);
    // and what the kubelet itself answers for those logs
    assert.deepEqual(
      [await kubeletLog(name, 'app', false), await kubeletLog(name, 'app', true), await kubeletLog(name, 'setup', false), await kubeletLog(name, 'sidecar', false)],
      [appLines(2), appLines(1), SETUP_LINE, SIDECAR_LINE],
      'the pod does not log what the test expects of it',
    );

    // When Falcosidekick sends an alert about it to capture-evidence
    const answer = await waitFor('an answer from capture-evidence', async () => {
      const a = await sendFromClient(d, terminalShellAlert(WORKLOAD_NAMESPACE, name), URL);
      return a.status === undefined ? undefined : a;
    }, 30000);

    // Then it answers done, naming the Secret
    assert.equal(answer.status, 200, answer.body);
    const body = JSON.parse(answer.body ?? 'null');
    assert.equal(body.status, 'done', answer.body);
    assert.equal(body.details.changed, true, answer.body);
    const [secret, ...others] = await evidenceSecrets(name);
    assert.deepEqual(others, []);
    assert.deepEqual(body.details.secret, { namespace: FUNCTIONS_NAMESPACE, name: secret.metadata.name });
    // and the Secret holds every log as the kubelet has it, the pod, the alert
    const { index } = assertEvidence(secret, pod, EXPECTED_LOGS);
    console.log(`      evidence ${secret.metadata.name}: ${index.logs.map((l: any) => `${l.container}/${l.log} ${l.status}${l.bytes === undefined ? '' : ` ${l.bytes} B`}`).join(', ')}`);
    // and the Event on the pod says where it is
    const [event, ...more] = await recordedEvents(WORKLOAD_NAMESPACE, 'Pod', name, 'FalcoResponseEvidence');
    assert.deepEqual(more, []);
    assert.equal(event.involvedObject.uid, pod.metadata.uid);
    assert.ok(event.message.includes(`to the Secret '${FUNCTIONS_NAMESPACE}/${secret.metadata.name}'`), event.message);
  });

  it('a container in a crash loop, and one not started yet: no log saved twice, none said unreadable', async () => {
    // Given a pod whose app container fails every run, and one whose app waits for an init container that never ends
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: notRunningPods() }));
    // and, while the app is in its back-off, what the kubelet answers for its current and its previous log
    const seen = await waitFor('evidence-loop in CrashLoopBackOff, both logs read within one back-off', async () => {
      const pod = await getJson(['pod', 'evidence-loop', '-n', WORKLOAD_NAMESPACE]);
      const app = statusOf(pod, 'containerStatuses', 'app');
      if (app?.state?.waiting?.reason !== 'CrashLoopBackOff' || !(app.restartCount >= 1)) return undefined;
      const current = await kubeletLog('evidence-loop', 'app', false);
      const previous = await kubeletLog('evidence-loop', 'app', true);
      const again = statusOf(await getJson(['pod', 'evidence-loop', '-n', WORKLOAD_NAMESPACE]), 'containerStatuses', 'app');
      return again.restartCount === app.restartCount && again.state.waiting !== undefined ? { current, previous } : undefined;
    }, 120000, 500);
    console.log(`      the kubelet, for a container in its back-off: current log ${JSON.stringify(seen.current)}, previous ${JSON.stringify(seen.previous)}`);
    assert.equal(seen.current, seen.previous, 'the kubelet answered a current log of its own for a container in its back-off');
    await waitFor('evidence-waiting: its init container running, its app waiting', async () => {
      const pod = await getJson(['pod', 'evidence-waiting', '-n', WORKLOAD_NAMESPACE]);
      return statusOf(pod, 'initContainerStatuses', 'setup')?.state?.running !== undefined && statusOf(pod, 'containerStatuses', 'sidecar')?.state?.waiting !== undefined ? true : undefined;
    }, 120000, 500);

    // When an alert names each
    for (const name of ['evidence-loop', 'evidence-waiting']) {
      const answer = await sendFromClient(d, terminalShellAlert(WORKLOAD_NAMESPACE, name), URL);
      assert.equal(JSON.parse(answer.body ?? 'null')?.status, 'done', answer.body);
    }

    // Then the crash loop's last run is saved once, as its previous log, and the current one said to be none
    const [loop] = await evidenceSecrets('evidence-loop');
    const loopData = decoded(loop);
    const loopIndex = JSON.parse(loopData['evidence.json']);
    const kept = JSON.parse(loopData['pod.json']);
    assert.ok(statusOf(kept, 'containerStatuses', 'app').state.waiting !== undefined, `the pod as read was not waiting: ${loopData['pod.json']}`);
    assert.deepEqual(Object.keys(loopData).sort(), ['alert.json', 'app.previous.log', 'evidence.json', 'pod.json']);
    assert.match(loopData['app.previous.log'], /^evidence loop: run \d+\n$/);
    assert.deepEqual(
      loopIndex.logs.map((l: any) => [l.container, l.log, l.status, l.reason ?? null]),
      [
        ['app', 'current', 'none', "when the pod was read, the container was waiting to restart (CrashLoopBackOff): its current log was not read (the kubelet would have answered its last run's, saved as its previous log)"],
        ['app', 'previous', 'saved', null],
      ],
      loopData['evidence.json'],
    );
    // and the app that has not started has no log, the init container that runs its own
    const [waiting] = await evidenceSecrets('evidence-waiting');
    const waitingData = decoded(waiting);
    assert.equal(waitingData['setup.log'], SETUP_LINE);
    assert.deepEqual(
      JSON.parse(waitingData['evidence.json']).logs.map((l: any) => [l.container, l.log, l.status, l.reason ?? null]),
      [
        ['setup', 'current', 'saved', null],
        ['setup', 'previous', 'none', 'the container has not restarted: there is no previous log'],
        ['sidecar', 'current', 'none', 'when the pod was read, the container had not started yet (PodInitializing): its log was not read'],
        ['sidecar', 'previous', 'none', 'the container has not restarted: there is no previous log'],
      ],
      waitingData['evidence.json'],
    );
  });

  it("the README's evidence-then-delete route: the evidence saved while the pod runs, then the pod deleted; the evidence outlives it", async () => {
    // Given the route exactly as the README shows it, edited into the forwarder's ConfigMap
    const route = readmeEvidenceRoute();
    originalRoutes = await routesText();
    await editRoutes((r) => {
      r.routes = route.routes;
    });
    await untilEveryForwarder(d, 'capture-evidence', true);
    // and a running pod whose app container crashed once
    const name = pods[1];
    const pod = await crashedOnce(name);

    // When Falcosidekick sends a terminal-shell alert about it to the forwarder
    const answer = await sendFromClient(d, terminalShellAlert(WORKLOAD_NAMESPACE, name));

    // Then both actions ran, evidence first
    assert.equal(answer.status, 200, answer.body);
    const results = JSON.parse(answer.body ?? 'null').results as any[];
    assert.deepEqual(results.map((r) => [r.action, r.status]), [['capture-evidence', 'done'], ['delete-pod', 'done']], answer.body);
    // The evidence was taken of the pod before its deletion: the pod it kept is not terminating, its logs were readable
    const [secret] = await evidenceSecrets(name);
    assert.ok(secret !== undefined, `no evidence Secret for ${name}: ${answer.body}`);
    const { kept } = assertEvidence(secret, pod, EXPECTED_LOGS);
    assert.equal(kept.metadata.deletionTimestamp, undefined, 'the evidence shows a pod already being deleted');
    assert.ok(resultsOf(answer)['delete-pod'].message.includes(name), answer.body);
    // The pod goes, its logs with it; the evidence stays
    await waitFor(`the pod ${name} gone`, async () => ((await kubectl(['get', 'pod', name, '-n', WORKLOAD_NAMESPACE])).code !== 0 ? true : undefined), 60000);
    const logs = await kubectl(['logs', '-n', WORKLOAD_NAMESPACE, name, '-c', 'app']);
    assert.notEqual(logs.code, 0, 'the logs of the deleted pod are still served');
    const [after, ...others] = await evidenceSecrets(name);
    assert.deepEqual(others, []);
    assert.equal(after.metadata.uid, secret.metadata.uid);
    assert.equal(decoded(after)['app.previous.log'], appLines(1));
    const [event] = await recordedEvents(WORKLOAD_NAMESPACE, 'Pod', name, 'FalcoResponseEvidence');
    assert.ok(event.message.includes(secret.metadata.name), event.message);
  });
});
