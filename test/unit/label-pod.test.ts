import { strict as assert } from 'assert';
import action from '../../functions/label-pod/action';
import { fitText } from '../../functions/label-pod/plan';
import { readParams } from '../../lib/params';
import {
  actionCases,
  alertHandled,
  auditEvent,
  configurationProblem,
  bodyWith,
  EVENTS_PATH as EVENTS,
  GET,
  onAnotherContainer,
  PATCH,
  POD_PATH as POD,
  POST,
  repeat,
  settledAnswer,
  STORED,
  TARGET,
  type ActionCase,
} from '../helpers/action-cases';
import { podObject, status } from '../helpers/fake-cluster';
import { alert } from '../helpers/fixtures';

const MERGE_PATCH = 'application/merge-patch+json';
const UUID = '3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11';
const RULE_VALUE = 'Terminal-shell-in-container-e0e5b21b';
const LABELS = `falco.org/flagged=true, falco.org/rule=${RULE_VALUE}, falco.org/priority=Critical`;
const DEFAULT_LABELS = { 'falco.org/flagged': 'true', 'falco.org/rule': RULE_VALUE, 'falco.org/priority': 'Critical' };
const TOUCHED = (changed: boolean) => [{ kind: 'Pod', namespace: 'default', name: 'kubecon', changed }];

/** The annotations label-pod writes for an alert, with the default prefix. */
function annotationsOf(a: Record<string, any>) {
  return {
    'falco.org/rule': a.rule,
    'falco.org/priority': a.priority,
    'falco.org/time': a.time,
    'falco.org/uuid': a.uuid ?? null,
    'falco.org/output': a.output,
  };
}

/** The pod as it is after label-pod handled the terminal-shell alert. */
function labelledPod() {
  const annotations: Record<string, string> = { ...annotationsOf(alert('terminal-shell')) };
  return podObject('default', 'kubecon', { ownerKind: 'ReplicaSet', labels: { app: 'web', ...DEFAULT_LABELS }, annotations });
}

const labelled = (labels: Record<string, unknown>, annotations: unknown = annotationsOf(alert('terminal-shell'))) => ({
  metadata: { uid: 'uid-kubecon', labels, ...(annotations === null ? {} : { annotations }) },
});
const pod = () => podObject('default', 'kubecon');
const later = { ...alert('terminal-shell'), uuid: '0e7c2a6b-5d4f-4c3b-8a19-7f6e5d4c3b2a', time: '2023-05-25T14:00:00.000000000Z', output: 'another shell' };
const other = { ...alert('terminal-shell'), rule: 'Contact K8S API Server From Container', priority: 'Notice' };
const loud = { ...alert('terminal-shell'), output: 'x'.repeat(10000) };
const cut = `${'x'.repeat(4096 - Buffer.byteLength('… (cut from 10000 bytes)'))}… (cut from 10000 bytes)`;
const fullPod = podObject('default', 'kubecon', { annotations: { big: 'y'.repeat(262144 - 'big'.length - 200) } });

/** The answer of a labelling: its message, what it set and removed, and its notes. */
const ALREADY = `the pod 'kubecon' in the namespace 'default' is already labelled (${LABELS}): nothing to change`;
const alreadyLabelled = {
  status: 'done',
  action: 'label-pod',
  target: TARGET,
  dryRun: false,
  message: ALREADY,
  details: { labels: DEFAULT_LABELS, removed: [], notes: [], touched: TOUCHED(false), changed: false, eventRecorded: false },
};

/** The answer of the default labelling of a pod not labelled yet, its Event queued. */
const labelledAnswer = {
  status: 'done',
  action: 'label-pod',
  target: TARGET,
  dryRun: false,
  message: `labelled the pod 'kubecon' in the namespace 'default' (${LABELS})`,
  details: { labels: DEFAULT_LABELS, removed: [], notes: [], touched: TOUCHED(true), changed: true, eventRecorded: 'queued' },
};

/** Label values from hostile rule names: what falco.org/rule becomes, or undefined when it is left out. */
const HOSTILE_RULES: [string, string, string | undefined][] = [
  ['spaces', 'Write below etc', 'Write-below-etc-44d1fc65'],
  ['unicode', 'Écrire sous /etc ✓ 日本', 'crire-sous-etc-364413ed'],
  ['200 characters', 'A'.repeat(200), `${'A'.repeat(54)}-70d3bf8b`],
  ['a path', '../../etc/passwd', 'etc-passwd-3754d6cb'],
  ['nothing left after sanitizing', '../', undefined],
  ['nothing but non-ASCII', '日本語', undefined],
];

function hostileCase([what, rule, value]: [string, string, string | undefined]): ActionCase {
  const hostile = { ...alert('terminal-shell'), rule };
  const labels: Record<string, string> = { 'falco.org/flagged': 'true', ...(value === undefined ? {} : { 'falco.org/rule': value }), 'falco.org/priority': 'Critical' };
  const described = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const note = `the label falco.org/rule was left out: the alert's rule ${JSON.stringify(rule)} holds no ASCII letter or digit to make a label value from`;
  return {
    title: `label values from hostile rule names: ${what}: ${value === undefined ? 'leaves the rule label out and says so' : `sets falco.org/rule=${value}`}`,
    alert: hostile,
    calls: [GET(POD, [200, pod()]), PATCH(POD, [200, pod()], { body: labelled(labels, annotationsOf(hostile)), contentType: MERGE_PATCH }), POST(EVENTS, STORED)],
    answer: {
      status: 'done',
      action: 'label-pod',
      target: TARGET,
      dryRun: false,
      message: `labelled the pod 'kubecon' in the namespace 'default' (${described})${value === undefined ? `; ${note}` : ''}`,
      details: { labels, removed: [], notes: value === undefined ? [note] : [], touched: TOUCHED(true), changed: true, eventRecorded: 'queued' },
    },
  };
}

const CASES: readonly ActionCase[] = [
  {
    title: 'labels and annotates the pod with one merge patch, touching no other label, and records an Event',
    calls: [
      GET(POD, [200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' })]),
      PATCH(POD, [200, labelledPod()], { body: labelled(DEFAULT_LABELS), contentType: MERGE_PATCH }),
      POST(EVENTS, STORED, {
        body: auditEvent(
          'FalcoResponseLabeled',
          `label-pod labelled the pod (${LABELS}) after the Falco rule "Terminal shell in container" (priority Critical, alert uuid ${UUID})`,
          'falco-response/label-pod',
        ),
      }),
    ],
    answer: labelledAnswer,
  },
  {
    // The first delivery labels the pod; the nine others come within SETTLED_SECONDS and are answered from memory
    title: 'the same alert delivered ten times within SETTLED_SECONDS: one read and one patch, the nine others answered settled by the first',
    deliveries: 10,
    calls: [GET(POD, [200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' })]), PATCH(POD, [200, labelledPod()]), POST(EVENTS, STORED)],
    answers: [
      labelledAnswer,
      ...Array.from({ length: 9 }, () => settledAnswer('label-pod', 'event-0')),
    ],
  },
  {
    title: 'an alike alert SETTLED_SECONDS after the pod was labelled reads it again (and finds it labelled)',
    alerts: [alert('terminal-shell'), later],
    secondsApart: 10,
    calls: [GET(POD, [200, pod()]), PATCH(POD, [200, labelledPod()]), POST(EVENTS, STORED), GET(POD, [200, labelledPod()])],
    answers: [
      { status: 'done', action: 'label-pod', target: TARGET, dryRun: false, message: `labelled the pod 'kubecon' in the namespace 'default' (${LABELS})`, details: { labels: DEFAULT_LABELS, removed: [], notes: [], touched: TOUCHED(true), changed: true, eventRecorded: 'queued' } },
      alreadyLabelled,
    ],
  },
  {
    title: 'an alike alert 9 s after is answered settled, with the first alert in `settled.by`',
    alerts: [alert('terminal-shell'), later],
    secondsApart: 9,
    calls: [GET(POD, [200, labelledPod()])],
    answers: [alreadyLabelled, settledAnswer('label-pod', 'event-0')],
  },
  {
    // A pod deleted and created again under its name runs containers of new ids: a new target
    title: 'an alert on another container of the same pod name is a new target: the pod is read again',
    alerts: [alert('terminal-shell'), onAnotherContainer(alert('terminal-shell'))],
    calls: [GET(POD, [200, labelledPod()]), GET(POD, [200, pod()]), PATCH(POD, [200, labelledPod()], { body: labelled(DEFAULT_LABELS), contentType: MERGE_PATCH }), POST(EVENTS, STORED)],
    answers: [
      alreadyLabelled,
      { status: 'done', action: 'label-pod', target: TARGET, dryRun: false, message: `labelled the pod 'kubecon' in the namespace 'default' (${LABELS})`, details: { labels: DEFAULT_LABELS, removed: [], notes: [], touched: TOUCHED(true), changed: true, eventRecorded: 'queued' } },
    ],
  },
  {
    title: 'an alert of another rule or priority on the settled pod is not answered from memory: its labels differ',
    alerts: [alert('terminal-shell'), { ...alert('terminal-shell'), priority: 'Emergency' }],
    calls: [
      GET(POD, [200, labelledPod()]),
      GET(POD, [200, labelledPod()]),
      PATCH(POD, [200, pod()], { body: (body: any) => body.metadata.labels['falco.org/priority'] === 'Emergency', contentType: MERGE_PATCH }),
      POST(EVENTS, STORED),
    ],
    answers: [
      alreadyLabelled,
      {
        status: 'done',
        action: 'label-pod',
        target: TARGET,
        dryRun: false,
        message: /^labelled the pod 'kubecon' .*falco.org\/priority=Emergency\)$/,
        details: { labels: { ...DEFAULT_LABELS, 'falco.org/priority': 'Emergency' }, removed: [], notes: [], touched: TOUCHED(true), changed: true, eventRecorded: 'queued' },
      },
    ],
  },
  {
    title: 'a failure is not remembered: the next alike alert is handled anew',
    deliveries: 2,
    calls: [GET(POD, [403, status(403, 'Forbidden', 'pods "kubecon" is forbidden')]), GET(POD, [200, labelledPod()])],
    answers: [{ status: 'failed', target: TARGET, error: /forbidden/ }, alreadyLabelled],
  },
  {
    title: 'a dry run is not remembered: it changed nothing, so the next alike alert reads the pod again',
    env: { DRY_RUN: 'true' },
    deliveries: 2,
    calls: [GET(POD, [200, labelledPod()]), GET(POD, [200, labelledPod()])],
    answers: [
      { ...alreadyLabelled, dryRun: true },
      { ...alreadyLabelled, dryRun: true },
    ],
  },
  {
    // The first delivery finds the pod unlabelled, the nine others find it labelled
    title: 'with SETTLED_SECONDS 0, every alert reads the pod: the same alert delivered ten times patches once',
    env: { SETTLED_SECONDS: '0' },
    deliveries: 10,
    calls: [
      GET(POD, [200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' })]),
      PATCH(POD, [200, labelledPod()]),
      POST(EVENTS, STORED),
      ...repeat(9, [GET(POD, [200, labelledPod()])]),
    ],
    answers: [
      labelledAnswer,
      ...Array.from({ length: 9 }, () => alreadyLabelled),
    ],
  },
  {
    title: 'writes nothing for another alert of the same rule on a labelled pod: the annotations keep naming the first alert',
    alert: later,
    calls: [GET(POD, [200, labelledPod()])],
    answer: alreadyLabelled,
  },
  {
    title: 'relabels when an alert of another rule comes, with that alert in the annotations',
    alert: other,
    calls: [
      GET(POD, [200, labelledPod()]),
      PATCH(POD, [200, pod()], {
        body: labelled({ 'falco.org/flagged': 'true', 'falco.org/rule': 'Contact-K8S-API-Server-From-Container-d90e4c30', 'falco.org/priority': 'Notice' }, annotationsOf(other)),
        contentType: MERGE_PATCH,
      }),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'label-pod',
      target: TARGET,
      dryRun: false,
      message:
        "labelled the pod 'kubecon' in the namespace 'default' (falco.org/flagged=true, falco.org/rule=Contact-K8S-API-Server-From-Container-d90e4c30, falco.org/priority=Notice)",
      details: {
        labels: { 'falco.org/flagged': 'true', 'falco.org/rule': 'Contact-K8S-API-Server-From-Container-d90e4c30', 'falco.org/priority': 'Notice' },
        removed: [],
        notes: [],
        touched: TOUCHED(true),
        changed: true,
        eventRecorded: 'queued',
      },
    },
  },
  ...HOSTILE_RULES.map(hostileCase),
  {
    // The first alert removes the label, the second finds nothing to do
    title: 'removes a label only when configured with key-, and sets nothing it was not configured with',
    env: { LABELS: 'falco.org/flagged=true,falco.org/cleared-', SETTLED_SECONDS: '0' },
    deliveries: 2,
    calls: [
      GET(POD, [200, podObject('default', 'kubecon', { labels: { app: 'web', 'falco.org/cleared': 'true' } })]),
      PATCH(POD, [200, pod()], { body: labelled({ 'falco.org/flagged': 'true', 'falco.org/cleared': null }), contentType: MERGE_PATCH }),
      POST(EVENTS, STORED),
      GET(POD, [200, podObject('default', 'kubecon', { labels: { app: 'web', 'falco.org/flagged': 'true' }, annotations: annotationsOf(alert('terminal-shell')) })]),
    ],
    answers: [
      {
        status: 'done',
        action: 'label-pod',
        target: TARGET,
        dryRun: false,
        message: "labelled the pod 'kubecon' in the namespace 'default' (falco.org/flagged=true, falco.org/cleared-)",
        details: { labels: { 'falco.org/flagged': 'true' }, removed: ['falco.org/cleared'], notes: [], touched: TOUCHED(true), changed: true, eventRecorded: 'queued' },
      },
      {
        status: 'done',
        action: 'label-pod',
        target: TARGET,
        dryRun: false,
        message: "the pod 'kubecon' in the namespace 'default' is already labelled (falco.org/flagged=true, falco.org/cleared-): nothing to change",
        details: { labels: { 'falco.org/flagged': 'true' }, removed: ['falco.org/cleared'], notes: [], touched: TOUCHED(false), changed: false, eventRecorded: false },
      },
    ],
  },
  {
    title: 'cuts a long output text in its annotation and says so',
    alert: loud,
    calls: [GET(POD, [200, pod()]), PATCH(POD, [200, pod()], { body: (body: any) => body.metadata.annotations['falco.org/output'] === cut && Buffer.byteLength(cut) === 4096 }), POST(EVENTS, STORED)],
    answer: {
      status: 'done',
      action: 'label-pod',
      target: TARGET,
      dryRun: false,
      message: `labelled the pod 'kubecon' in the namespace 'default' (${LABELS}); the annotation falco.org/output was cut to 4096 bytes (the alert's output has 10000)`,
      details: {
        labels: DEFAULT_LABELS,
        removed: [],
        notes: ["the annotation falco.org/output was cut to 4096 bytes (the alert's output has 10000)"],
        touched: TOUCHED(true),
        changed: true,
        eventRecorded: 'queued',
      },
    },
  },
  {
    title: "leaves the output annotation out when the pod's annotations leave no room within 256 KiB",
    calls: [
      GET(POD, [200, fullPod]),
      PATCH(POD, [200, pod()], { body: (body: any) => body.metadata.annotations['falco.org/output'] === null && body.metadata.annotations['falco.org/rule'] === 'Terminal shell in container' }),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'label-pod',
      target: TARGET,
      dryRun: false,
      message: `labelled the pod 'kubecon' in the namespace 'default' (${LABELS}); the annotation falco.org/output was left out: the pod's annotations leave too little room for it`,
      details: {
        labels: DEFAULT_LABELS,
        removed: [],
        notes: ["the annotation falco.org/output was left out: the pod's annotations leave too little room for it"],
        touched: TOUCHED(true),
        changed: true,
        eventRecorded: 'queued',
      },
    },
  },
  {
    title: 'writes no annotation when ANNOTATION_PREFIX is empty',
    env: { ANNOTATION_PREFIX: '', LABELS: 'falco.org/flagged=true' },
    calls: [GET(POD, [200, pod()]), PATCH(POD, [200, pod()], { body: labelled({ 'falco.org/flagged': 'true' }, null), contentType: MERGE_PATCH }), POST(EVENTS, STORED)],
    answer: {
      status: 'done',
      action: 'label-pod',
      target: TARGET,
      dryRun: false,
      message: "labelled the pod 'kubecon' in the namespace 'default' (falco.org/flagged=true)",
      details: { labels: { 'falco.org/flagged': 'true' }, removed: [], notes: [], touched: TOUCHED(true), changed: true, eventRecorded: 'queued' },
    },
  },
  {
    title: 'in dry-run mode reads the pod and reports the labels it would set, writing nothing',
    env: { DRY_RUN: 'true' },
    calls: [GET(POD, [200, pod()])],
    answer: {
      status: 'done',
      action: 'label-pod',
      target: TARGET,
      dryRun: true,
      message: `would label the pod 'kubecon' in the namespace 'default' (${LABELS})`,
      details: { labels: DEFAULT_LABELS, removed: [], notes: [], touched: TOUCHED(true), changed: true, eventRecorded: false, patch: labelled(DEFAULT_LABELS) },
    },
  },
  {
    title: 'answers "pod gone" when the pod is deleted between the read and the patch',
    calls: [GET(POD, [200, pod()]), PATCH(POD, [404, status(404, 'NotFound', 'pods "kubecon" not found')])],
    answer: { status: 'skipped', code: 'pod-gone', reason: "the pod 'kubecon' in the namespace 'default' was deleted before it could be labelled", target: TARGET },
  },
  {
    title: 'leaves a new pod that took the name alone: the uid in the patch is refused (422, as a v1.20 API server answers)',
    calls: [
      GET(POD, [200, pod()]),
      PATCH(POD, [422, status(422, 'Invalid', 'Pod "kubecon" is invalid: metadata.uid: Invalid value: "uid-kubecon": field is immutable')], {
        body: bodyWith({ metadata: labelled(DEFAULT_LABELS).metadata }),
      }),
    ],
    answer: {
      status: 'skipped',
      code: 'pod-gone',
      reason: "the pod 'kubecon' in the namespace 'default' was replaced by a new pod of the same name since it was inspected (uid uid-kubecon): the new pod is left alone",
      target: TARGET,
    },
  },
  {
    title: 'still reports the labelling when the audit Event cannot be recorded',
    calls: [GET(POD, [200, pod()]), PATCH(POD, [200, pod()]), POST(EVENTS, [403, status(403, 'Forbidden', 'events is forbidden')])],
    answer: labelledAnswer,
    // the answer comes first and says the Event is queued; the warning follows it, naming the call
    log: [
      alertHandled('info', { outcome: 'done', result: `labelled the pod 'kubecon' in the namespace 'default' (${LABELS})`, dryRun: false }),
      {
        level: 'warn',
        message: 'the pod was labelled but the audit event could not be recorded',
        error:
          "create an event about the pod 'kubecon' in the namespace 'default' failed: the API server answered 403 Forbidden: events is forbidden (the function's " +
          "ServiceAccount lacks the permission 'create' on 'events': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)",
        eventId: '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f',
        target: { namespace: 'default', name: 'kubecon' },
      },
    ],
  },
  {
    title: 'answers every alert with the configuration problem when the function started with a bad one',
    env: { LABELS: 'pod-template-hash=x' },
    calls: [],
    answer: { status: 'failed', error: /^invalid configuration: LABELS: expected .*"pod-template-hash" is one\)\), got "pod-template-hash=x"$/ },
  },
];

describe('label-pod', () => {
  actionCases(action, CASES);

  describe('configuration, checked when the build runs and when the function starts', () => {
    const problem = (env: Record<string, string>) => configurationProblem(action.parameters, env);
    const expected = 'a comma-separated list of key=value, key={rule}, key={priority} or key- (remove the label) items';

    it('takes the defaults', () => {
      assert.deepEqual(readParams(action.parameters, {}).labels, [
        { kind: 'static', key: 'falco.org/flagged', value: 'true' },
        { kind: 'derived', key: 'falco.org/rule', from: 'rule' },
        { kind: 'derived', key: 'falco.org/priority', from: 'priority' },
      ]);
    });

    it('names every bad item of LABELS', () => {
      assert.equal(
        problem({ LABELS: 'falco.org/flagged=yes please,bad key=x,x={uuid},falco.org/flagged=true,app' }),
        `invalid configuration: LABELS: expected ${expected} (the value "yes please" of "falco.org/flagged" is not a label value ` +
          "(at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit); the key \"bad key\" is not a label key: " +
          "an optional DNS subdomain prefix and '/', then 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit; " +
          '"{uuid}" is not a placeholder (there are {rule} and {priority}); "app" has no \'=\' and does not end with \'-\'), ' +
          'got "falco.org/flagged=yes please,bad key=x,x={uuid},falco.org/flagged=true,app"',
      );
    });

    it('refuses a key that appears twice, and a key controllers select on', () => {
      assert.equal(
        problem({ LABELS: 'a=1,a-,pod-template-hash-' }),
        `invalid configuration: LABELS: expected ${expected} (the key "a" appears twice; the key "pod-template-hash" is not a label key ` +
          'that no controller sets or selects on ("pod-template-hash" is one)), got "a=1,a-,pod-template-hash-"',
      );
    });

    it('refuses an empty LABELS, a bad ANNOTATION_PREFIX and a bad OUTPUT_ANNOTATION_MAX_BYTES', () => {
      assert.equal(
        problem({ LABELS: ' , ', ANNOTATION_PREFIX: 'Falco.org', OUTPUT_ANNOTATION_MAX_BYTES: '1e6' }),
        `invalid configuration: LABELS: expected ${expected}, at least one, got " , "; ` +
          'ANNOTATION_PREFIX: expected a DNS subdomain such as falco.org (lowercase), or nothing for no annotations, got "Falco.org"; ' +
          'OUTPUT_ANNOTATION_MAX_BYTES: expected a whole number from 0 to 65536, got "1e6"',
      );
    });
  });

  describe('fitText', () => {
    it('cuts on a character boundary, never inside a multi-byte character', () => {
      // 51 bytes: 24 for the notice leave 27, room for 13 two-byte characters and not 13 and a half
      const result = fitText('é'.repeat(100), 51);
      assert.deepEqual(result, { text: `${'é'.repeat(13)}… (cut from 200 bytes)`, cut: true, bytes: 200 });
      assert.equal(Buffer.byteLength(result.text), 50);
    });
  });
});
