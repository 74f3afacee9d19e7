import { strict as assert } from 'assert';
import nock from 'nock';
import action from '../../functions/capture-evidence/action';
import { DATA_BUDGET_BYTES, secretName } from '../../functions/capture-evidence/evidence';
import { MAX_SECRET_DATA_BYTES } from '../../lib/kube/secrets';
import { isLabelValue, isQualifiedName } from '../../lib/names';
import { handlerFor, serveApi } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent, podObject } from '../helpers/fixtures';
import { MemoryCluster } from '../helpers/memory-cluster';

const OWN = 'falco-response';
const UUID = '3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11';
const SECRETS = `/api/v1/namespaces/${OWN}/secrets`;
const NAME = secretName(UUID, 'uid-kubecon');
const NOW = new Date('2026-12-01T12:00:00Z');

/** A pod of `default` with these containers in its spec (init and ephemeral ones too). */
function podWith(spec: Record<string, { name: unknown }[]>, name = 'kubecon', uid = `uid-${name}`) {
  const pod = podObject('default', name, { ownerKind: 'ReplicaSet', uid });
  return { ...pod, spec: { ...spec } };
}

/** An evidence Secret already there, created `hoursAgo`, with our labels unless told otherwise. */
function oldSecret(name: string, hoursAgo: number, options: { namespace?: string; labels?: Record<string, string> } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: options.namespace ?? OWN,
      uid: `uid-${name}`,
      resourceVersion: '7',
      creationTimestamp: new Date(Date.now() - hoursAgo * 3600 * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
      labels: options.labels ?? { 'app.kubernetes.io/managed-by': 'falco-response', 'falco-response.io/evidence': 'true' },
    },
    data: {},
  };
}

/** The Secret's data, decoded. */
function evidenceOf(cluster: MemoryCluster, name: string = NAME): { labels: Record<string, string>; data: Record<string, Buffer>; index: any } {
  const secret = cluster.objects.get(`${SECRETS}/${name}`) as any;
  assert.ok(secret !== undefined, `no Secret ${name}: ${[...cluster.objects.keys()].join(', ')}`);
  const data = Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
  return { labels: secret.metadata.labels, data, index: JSON.parse(data['evidence.json'].toString('utf8')) };
}

async function run(cluster: MemoryCluster, env: Record<string, string> = {}, body: Record<string, any> = alert('terminal-shell'), eventId?: string) {
  const calls: string[] = [];
  nock.cleanAll(); // the calls of this run only, when a test runs several
  serveApi((method, path, sent, authorization) => {
    calls.push(`${method} ${path}`);
    return cluster.serve(method, path, sent, authorization);
  });
  const { handler, log } = handlerFor(action, env);
  const { event, response } = eventId === undefined ? kubelessEvent(body) : kubelessEvent(body, eventId);
  const answer = await handler(event, kubelessContext());
  return { answer: answer as any, status: response.statusCode, log: log.lines, calls };
}

const writes = (calls: readonly string[]) => calls.filter((c) => !c.startsWith('GET '));

interface Case {
  readonly name: string;
  readonly pod: Record<string, unknown>;
  readonly logs?: readonly [container: string, text: string | Buffer, kind?: 'current' | 'previous'][];
  readonly env?: Record<string, string>;
  then(evidence: ReturnType<typeof evidenceOf>, answer: any): void;
}

const CASES: readonly Case[] = [
  {
    name: 'every container, init and ephemeral ones too, current and previous; a previous log that does not exist is said to be none',
    pod: podWith({ initContainers: [{ name: 'init' }], containers: [{ name: 'app' }, { name: 'sidecar' }], ephemeralContainers: [{ name: 'debugger' }] }),
    logs: [
      ['init', 'init done\n'],
      ['app', 'app now\n'],
      ['app', 'app before its restart\n', 'previous'],
      ['sidecar', 'sidecar\n'],
      ['debugger', 'debugging\n'],
    ],
    then({ data, index }) {
      assert.deepEqual(
        Object.keys(data).sort(),
        ['alert.json', 'app.log', 'app.previous.log', 'debugger.log', 'evidence.json', 'init.log', 'pod.json', 'sidecar.log'],
      );
      assert.equal(data['app.previous.log'].toString(), 'app before its restart\n');
      assert.equal(data['init.log'].toString(), 'init done\n');
      assert.deepEqual(
        index.logs.map((l: any) => [l.container, l.role, l.log, l.status]),
        [
          ['init', 'init', 'current', 'saved'],
          ['init', 'init', 'previous', 'none'],
          ['app', 'container', 'current', 'saved'],
          ['app', 'container', 'previous', 'saved'],
          ['sidecar', 'container', 'current', 'saved'],
          ['sidecar', 'container', 'previous', 'none'],
          ['debugger', 'ephemeral', 'current', 'saved'],
          ['debugger', 'ephemeral', 'previous', 'none'],
        ],
      );
      assert.equal(index.logs[1].reason, 'the container has not restarted: there is no previous log');
      assert.deepEqual(index.cuts, []);
      const pod = JSON.parse(data['pod.json'].toString());
      assert.deepEqual([pod.metadata.uid, pod.status.phase], ['uid-kubecon', 'Running']);
      assert.equal(JSON.parse(data['alert.json'].toString()).uuid, UUID);
    },
  },
  {
    name: 'a container that is not running has no current log: waiting to restart (a crash loop: its last run is its previous log, not saved twice) or not started yet',
    pod: {
      ...podWith({ initContainers: [{ name: 'setup' }], containers: [{ name: 'app' }, { name: 'later' }] }),
      status: {
        phase: 'Pending',
        initContainerStatuses: [{ name: 'setup', restartCount: 0, state: { running: { startedAt: '2026-12-01T11:59:00Z' } } }],
        containerStatuses: [
          {
            name: 'app',
            restartCount: 4,
            state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container' } },
            lastState: { terminated: { exitCode: 3, reason: 'Error', containerID: 'containerd://5e2f' } },
          },
          { name: 'later', restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } },
        ],
      },
    },
    logs: [
      ['setup', 'setting up\n'],
      ['app', 'run 5\n', 'previous'],
    ],
    then({ data, index }) {
      assert.deepEqual(Object.keys(data).sort(), ['alert.json', 'app.previous.log', 'evidence.json', 'pod.json', 'setup.log']);
      assert.equal(data['app.previous.log'].toString(), 'run 5\n');
      assert.deepEqual(
        index.logs.map((l: any) => [l.container, l.log, l.status, l.reason ?? null]),
        [
          ['setup', 'current', 'saved', null],
          ['setup', 'previous', 'none', 'the container has not restarted: there is no previous log'],
          ['app', 'current', 'none', "when the pod was read, the container was waiting to restart (CrashLoopBackOff): its current log was not read (the kubelet would have answered its last run's, saved as its previous log)"],
          ['app', 'previous', 'saved', null],
          ['later', 'current', 'none', 'when the pod was read, the container had not started yet (PodInitializing): its log was not read'],
          ['later', 'previous', 'none', 'the container has not restarted: there is no previous log'],
        ],
      );
    },
  },
  {
    name: 'LOG_TAIL_LINES: the last lines only, the cap stated',
    pod: podWith({ containers: [{ name: 'app' }] }),
    logs: [['app', 'one\ntwo\nthree\nfour\nfive\n']],
    env: { LOG_TAIL_LINES: '2' },
    then({ data, index }) {
      assert.equal(data['app.log'].toString(), 'four\nfive\n');
      assert.equal(index.caps.tailLines, 2);
    },
  },
  {
    name: 'LOG_LIMIT_BYTES: at most that many bytes, the cut stated in the Secret and the answer',
    pod: podWith({ containers: [{ name: 'app' }] }),
    logs: [['app', 'x'.repeat(5000)]],
    env: { LOG_LIMIT_BYTES: '1024' },
    then({ data, index }, answer) {
      assert.equal(data['app.log'].length, 1024);
      assert.deepEqual(index.cuts, ['app.log: reached 1024 bytes: the rest was not read']);
      assert.deepEqual(answer.details.cuts, ['app.log: reached 1024 bytes: the rest was not read']);
      assert.match(answer.message, /1 part\(s\) cut/);
    },
  },
  {
    name: 'the 1 MiB of a Secret: 32 containers of 200 KiB logs share what the alert and the pod leave, each log cut and saying why',
    pod: podWith({ containers: Array.from({ length: 32 }, (_, i) => ({ name: `c${i}` })) }),
    logs: Array.from({ length: 32 }, (_, i) => [`c${i}`, `${i}`.padEnd(200 * 1024, '.')] as [string, string]),
    env: { LOG_LIMIT_BYTES: String(DATA_BUDGET_BYTES) },
    then({ data, index }, answer) {
      const total = Object.values(data).reduce((n, b) => n + b.length, 0);
      assert.ok(total <= DATA_BUDGET_BYTES, `${total} bytes`);
      assert.ok(total < MAX_SECRET_DATA_BYTES - 100 * 1024, `${total} bytes leave too little margin`);
      assert.equal(answer.details.dataBytes, total);
      const perLog = index.caps.limitBytesPerLog;
      assert.ok(perLog > 8 * 1024 && perLog < 200 * 1024, String(perLog));
      assert.equal(data['c31.log'].length, perLog);
      assert.equal(index.cuts.length, 32);
      assert.equal(index.cuts[0], `c0.log: reached ${perLog} bytes (LOG_LIMIT_BYTES lowered to fit): the rest was not read`);
    },
  },
];

describe('capture-evidence (in-memory cluster, a real KubeClient through nock)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      // Given
      const cluster = new MemoryCluster({ clock: () => NOW }).add(c.pod);
      for (const [container, text, kind] of c.logs ?? []) cluster.setLog('default', 'kubecon', container, text, kind);

      // When
      const { answer, status, log } = await run(cluster, c.env);

      // Then
      assert.equal(status, 200, JSON.stringify(answer));
      assert.equal(answer.status, 'done', JSON.stringify(answer));
      assert.deepEqual(answer.details.secret, { namespace: OWN, name: NAME });
      assert.deepEqual(log.filter((l) => l.level !== 'info'), []);
      c.then(evidenceOf(cluster), answer);
    });
  }

  it('labels the Secret with the alert uuid and the pod, says where it is in an Event on the pod, and answers what it saved', async () => {
    // Given
    const cluster = new MemoryCluster().addPod('default', 'kubecon').setLog('default', 'kubecon', 'app', 'hello\n');

    // When
    const { answer } = await run(cluster);

    // Then
    assert.deepEqual(evidenceOf(cluster).labels, {
      'app.kubernetes.io/managed-by': 'falco-response',
      'falco-response.io/evidence': 'true',
      'falco-response.io/alert-uuid': UUID,
      'falco-response.io/pod-namespace': 'default',
      'falco-response.io/pod-name': 'kubecon',
      'falco-response.io/pod-uid': 'uid-kubecon',
    });
    const [event] = cluster.under('/api/v1/namespaces/default/events/') as any[];
    assert.equal(event.reason, 'FalcoResponseEvidence');
    assert.equal(
      event.message,
      `capture-evidence saved the evidence (logs, spec, status, alert) to the Secret '${OWN}/${NAME}' after the Falco rule "Terminal shell in container" (priority Critical, alert uuid ${UUID})`,
    );
    assert.equal(answer.message, `saved the evidence of the pod 'kubecon' in the namespace 'default' to the Secret '${OWN}/${NAME}' (1 log(s) saved, 0 unreadable, 0 part(s) cut, ${answer.details.dataBytes} bytes)`);
    assert.deepEqual(answer.details.touched, [{ kind: 'Secret', namespace: OWN, name: NAME, changed: true }]);
    assert.equal(answer.details.eventRecorded, 'queued');
    assert.deepEqual(answer.details.retention, { removed: 0 });
  });

  it('is idempotent per alert: the same alert again finds its Secret (409 AlreadyExists), answers changed false, records no second Event', async () => {
    // Given
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    await run(cluster);

    // When
    const { answer, calls } = await run(cluster, {}, alert('terminal-shell'), 'another-event-id');

    // Then
    assert.equal(answer.status, 'done');
    assert.equal(answer.message, `the evidence of the pod 'kubecon' in the namespace 'default' is already in the Secret '${OWN}/${NAME}'`);
    assert.equal(answer.details.changed, false);
    assert.equal(answer.details.eventRecorded, false);
    assert.deepEqual(writes(calls), [`POST ${SECRETS}`]);
    assert.equal(cluster.under(`${SECRETS}/`).length, 1);
    assert.equal(cluster.under('/api/v1/namespaces/default/events/').length, 1);
  });

  it('keys an alert without uuid (an old Falcosidekick) by its event-id and digest, and refuses one without either', async () => {
    // Given
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    const old = alert('terminal-shell');
    delete old.uuid;

    // When
    const keyed = await run(cluster, {}, old, 'evt-1');
    const again = await run(cluster, {}, old, 'evt-1');
    const other = await run(cluster, {}, old, 'evt-2');
    const none = await run(cluster, {}, old, '');

    // Then
    assert.equal(keyed.answer.details.changed, true);
    assert.equal(again.answer.details.changed, false);
    assert.notEqual(other.answer.details.secret.name, keyed.answer.details.secret.name);
    assert.match(keyed.answer.details.secret.name, /^falco-evidence-[0-9a-f]{32}-[0-9a-f]{8}$/);
    assert.deepEqual(none.answer, {
      status: 'skipped',
      code: 'not-applicable',
      reason: "the alert has no uuid and the call no event-id: the evidence of the pod 'kubecon' in the namespace 'default' could not be saved once only, so it was not",
      target: { namespace: 'default', pod: 'kubecon' },
    });
  });

  it('an alert naming another pod with the same uuid (replayed or forged) gets a Secret of its own', async () => {
    const cluster = new MemoryCluster().addPod('default', 'kubecon').add(podObject('default', 'other', { ownerKind: 'ReplicaSet' }));
    await run(cluster);
    const forged = alert('terminal-shell');
    forged.output_fields['k8s.pod.name'] = 'other';
    const { answer } = await run(cluster, {}, forged);
    assert.equal(answer.details.changed, true);
    assert.equal(cluster.under(`${SECRETS}/`).length, 2);
  });

  it('retention deletes only our evidence Secrets in our namespace older than EVIDENCE_RETENTION_SECONDS, oldest first, 10 a call, and says how many', async () => {
    // Given: 12 old ones of ours, a young one, an old Secret not labelled ours, an old one of ours in another namespace
    const cluster = new MemoryCluster({ clock: () => new Date() }).addPod('default', 'kubecon');
    for (let i = 0; i < 12; i++) cluster.add(oldSecret(`falco-evidence-old-${i}`, 24 + i));
    cluster.add(oldSecret('falco-evidence-young', 23));
    cluster.add(oldSecret('someone-elses', 1000, { labels: { 'falco-response.io/evidence': 'true' } }));
    cluster.add(oldSecret('falco-evidence-elsewhere', 1000, { namespace: 'default' }));

    // When
    const { answer, calls } = await run(cluster, { EVIDENCE_RETENTION_SECONDS: String(24 * 3600) });

    // Then: the 10 oldest gone, with uid preconditions; the rest stays
    assert.deepEqual(answer.details.retention, { removed: 10 });
    const left = [...cluster.objects.keys()].filter((p) => p.includes('/secrets/')).sort();
    assert.deepEqual(left, [
      '/api/v1/namespaces/default/secrets/falco-evidence-elsewhere',
      `${SECRETS}/${NAME}`,
      `${SECRETS}/falco-evidence-old-0`,
      `${SECRETS}/falco-evidence-old-1`,
      `${SECRETS}/falco-evidence-young`,
      `${SECRETS}/someone-elses`,
    ]);
    assert.equal(writes(calls).filter((c) => c.startsWith('DELETE')).length, 10);
    assert.ok(calls.includes(`GET ${SECRETS}?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dfalco-response%2Cfalco-response.io%2Fevidence%3Dtrue&limit=500`), calls.join('\n'));
  });

  it('dry run: reads, writes nothing (no Secret, no Event, no deletion), says what it would save and remove', async () => {
    // Given
    const cluster = new MemoryCluster().addPod('default', 'kubecon').setLog('default', 'kubecon', 'app', 'hello\n');
    cluster.add(oldSecret('falco-evidence-old', 1000));

    // When
    const { answer, calls } = await run(cluster, { DRY_RUN: 'true' });

    // Then
    assert.deepEqual(writes(calls), []);
    assert.equal(answer.dryRun, true);
    assert.match(answer.message, new RegExp(`^would save the evidence of the pod 'kubecon' in the namespace 'default' to the Secret '${OWN}/${NAME}' \\(1 log\\(s\\) saved`));
    assert.deepEqual(answer.details.retention, { removed: 0, wouldRemove: 1 });
    assert.equal(cluster.objects.has(`${SECRETS}/${NAME}`), false);
  });

  it('fails, naming the pod, when the own namespace is not known (nothing read but the pod)', async () => {
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    const calls: string[] = [];
    serveApi((method, path, sent) => (calls.push(`${method} ${path}`), cluster.answer(method, path, sent)));
    const { handler } = handlerFor(action, {}, { ownNamespace: '' });
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());
    assert.equal(answer.status, 'failed');
    assert.equal(answer.error, "the evidence of the pod 'kubecon' in the namespace 'default' was not saved: POD_NAMESPACE, the function's own namespace, is not known");
    assert.deepEqual(calls, ['GET /api/v1/namespaces/default/pods/kubecon']);
  });

  it('a log answer longer than limitBytes (a broken proxy) is cut at limitBytes, never read whole, and said to be cut', async () => {
    // Given: 4 MiB of log whatever limitBytes asked
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    serveApi((method, path, sent) => (path.includes('/log?') && !path.includes('previous') ? [200, Buffer.alloc(4 * 1024 * 1024, 0x61)] : cluster.answer(method, path, sent)));
    const { handler } = handlerFor(action, { LOG_LIMIT_BYTES: '2048' });

    // When
    const answer: any = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    // Then
    assert.equal(answer.status, 'done', JSON.stringify(answer));
    const { data, index } = evidenceOf(cluster);
    assert.equal(data['app.log'].length, 2048);
    assert.deepEqual(index.cuts, ['app.log: reached 2048 bytes: the rest was not read']);
  });

  describe('hostile pod, container names and log content', () => {
    const HOSTILE_LOG = Buffer.concat([Buffer.from('password=hunter2\n\u001b[2J\u009b31m\u202egnp.exe\n', 'utf8'), Buffer.from([0xff, 0xfe, 0x00, 0x0a])]);

    it('keeps the log as it was, bytes for bytes, in the data only: never in labels, the Event, the answer or the log lines', async () => {
      // Given: a pod of a 253-character name, a container whose name no API server would take (a broken proxy),
      // and a log of terminal controls, a bidi override, invalid UTF-8 and a credential
      const long = `p${'a'.repeat(251)}x`;
      const cluster = new MemoryCluster().add(podWith({ containers: [{ name: 'app' }, { name: 'a&b=c/../\u202e' }, { name: 42 }] }, long, 'uid-long'));
      cluster.setLog('default', long, 'app', HOSTILE_LOG);
      const body = alert('terminal-shell');
      body.output_fields['k8s.pod.name'] = long;

      // When
      const { answer, log, calls } = await run(cluster, {}, body);

      // Then: the bytes are kept exactly
      assert.equal(answer.status, 'done', JSON.stringify(answer));
      const name = secretName(UUID, 'uid-long');
      const { data, labels, index } = evidenceOf(cluster, name);
      assert.ok(data['app.log'].equals(HOSTILE_LOG));
      // the invalid container names are listed, quoted and escaped, and never asked for
      assert.deepEqual(
        index.logs.filter((l: any) => l.status === 'unreadable').map((l: any) => [l.container, l.reason]),
        [
          ['"a&b=c/../\\u202e"', 'not a valid container name: not read'],
          ['42', 'not a valid container name: not read'],
        ],
      );
      assert.deepEqual(calls.filter((c) => c.includes('/log?')).map((c) => /container=([^&]*)/.exec(c)?.[1]), ['app', 'app']);
      // every label valid, the long name hashed
      for (const [key, value] of Object.entries(labels)) assert.ok(isQualifiedName(key) && isLabelValue(value), `${key}=${value}`);
      assert.match(labels['falco-response.io/pod-name'], /^paaa+-[0-9a-f]{8}$/);
      // nothing of the log anywhere a person or a terminal reads
      const [event] = cluster.under('/api/v1/namespaces/default/events/') as any[];
      for (const text of [JSON.stringify(event), JSON.stringify(answer), JSON.stringify(log), JSON.stringify(labels)]) {
        assert.ok(!text.includes('hunter2') && !text.includes('gnp.exe'), text.slice(0, 300));
        // eslint-disable-next-line no-control-regex -- looking for control characters is the point
        assert.ok(!/[\u0000-\u001f\u007f-\u009f\u202e]/.test(text), 'an unescaped control character');
      }
    });
  });
});
