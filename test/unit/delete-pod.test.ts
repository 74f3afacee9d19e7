import action from '../../functions/delete-pod/action';
import { actionCases, alertHandled, auditEvent, bodyWith, DELETE, EVENTS_PATH as EVENTS, GET, POD_PATH as POD, POST, RESET, STORED, TARGET, type ActionCase } from '../helpers/action-cases';
import { podObject, status } from '../helpers/fake-cluster';
import { alert } from '../helpers/fixtures';

const DELETE_OPTIONS = { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 1, preconditions: { uid: 'uid-kubecon' } };
const NOT_FOUND = status(404, 'NotFound', 'pods "kubecon" not found');
const DELETED = "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s)";
const TOUCHED = [{ kind: 'Pod', namespace: 'default', name: 'kubecon', changed: true }];

/** The log line of an alert that deleted the pod. */
const HANDLED_DELETED = alertHandled('info', { outcome: 'done', result: DELETED, dryRun: false });

const terminating = (deletionGracePeriodSeconds: number) => {
  const pod = podObject('default', 'kubecon');
  return { ...pod, metadata: { ...pod.metadata, deletionTimestamp: '2026-11-26T10:00:01Z', deletionGracePeriodSeconds } };
};

const CASES: readonly ActionCase[] = [
  {
    title: 'deletes the pod a terminal-shell alert names, with a uid precondition, and records an Event',
    calls: [
      GET(POD, [200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' })]),
      DELETE(POD, [200, podObject('default', 'kubecon')], { body: DELETE_OPTIONS, contentType: 'application/json' }),
      POST(EVENTS, STORED, {
        body: auditEvent(
          'FalcoResponseDeleted',
          'delete-pod deleted the pod after the Falco rule "Terminal shell in container" (priority Critical, alert uuid 3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11)',
        ),
      }),
    ],
    answer: {
      status: 'done',
      action: 'delete-pod',
      target: TARGET,
      dryRun: false,
      message: DELETED,
      details: { touched: TOUCHED, changed: true, eventRecorded: 'queued', owner: 'ReplicaSet' },
    },
    log: [HANDLED_DELETED],
  },
  {
    title: 'answers "already gone" for a pod that no longer exists, so repeated alerts are harmless',
    calls: [GET(POD, [404, NOT_FOUND])],
    answer: { status: 'skipped', code: 'pod-gone', reason: "the pod 'kubecon' in the namespace 'default' is already gone", target: TARGET },
  },
  {
    title: 'answers "already deleted" when the pod vanishes between the read and the delete',
    calls: [GET(POD, [200, podObject('default', 'kubecon')]), DELETE(POD, [404, NOT_FOUND])],
    answer: { status: 'skipped', code: 'pod-gone', reason: "the pod 'kubecon' in the namespace 'default' is already deleted", target: TARGET },
  },
  {
    title: 'a pod already terminating is left to finish when its grace period is no longer than ours: a burst of alerts deletes it once',
    calls: [GET(POD, [200, terminating(1)])],
    answer: {
      status: 'skipped',
      code: 'pod-gone',
      reason: "the pod 'kubecon' in the namespace 'default' is already being deleted (since 2026-11-26T10:00:01Z, grace period 1 s): deleting it again would not hasten it",
      target: TARGET,
    },
  },
  {
    title: 'a pod already terminating is deleted again when it was given a longer grace period: ours cuts it short',
    calls: [GET(POD, [200, terminating(3600)]), DELETE(POD, [200, terminating(1)], { body: DELETE_OPTIONS }), POST(EVENTS, STORED)],
    answer: {
      status: 'done',
      action: 'delete-pod',
      target: TARGET,
      dryRun: false,
      message: DELETED,
      details: { touched: TOUCHED, changed: true, eventRecorded: 'queued', owner: 'none' },
    },
  },
  {
    // The server deleted the pod but the connection broke before the answer (seen on a real API server,
    // test/e2e/fault-injection.test.ts); the retry gets 404
    title: 'reports and audits its own deletion when the answer to the first DELETE was lost and the retry finds the pod gone',
    calls: [
      GET(POD, [200, podObject('default', 'kubecon')]),
      DELETE(POD, RESET),
      DELETE(POD, [404, NOT_FOUND]),
      POST(EVENTS, STORED, { body: bodyWith({ reason: 'FalcoResponseDeleted' }) }),
    ],
    answer: {
      status: 'done',
      action: 'delete-pod',
      target: TARGET,
      dryRun: false,
      message: "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s; the answer to an earlier attempt was lost, and the retry found the pod gone)",
      details: { touched: TOUCHED, changed: true, eventRecorded: 'queued', owner: 'none' },
    },
  },
  {
    title: 'leaves a new pod that took the same name alone (uid precondition refused: 409)',
    calls: [
      GET(POD, [200, podObject('default', 'kubecon')]),
      DELETE(POD, [409, status(409, 'Conflict', 'Precondition failed: UID in precondition: uid-kubecon, UID in object meta: other')]),
    ],
    answer: {
      status: 'skipped',
      code: 'pod-gone',
      reason: "the pod 'kubecon' in the namespace 'default' was replaced by a new pod of the same name since it was inspected (uid uid-kubecon): the new pod is left alone",
      target: TARGET,
    },
  },
  {
    title: 'still reports the deletion when the audit Event cannot be recorded',
    calls: [
      GET(POD, [200, podObject('default', 'kubecon')]),
      DELETE(POD, [200, podObject('default', 'kubecon')]),
      POST(EVENTS, [403, status(403, 'Forbidden', 'events is forbidden')]),
    ],
    answer: {
      status: 'done',
      action: 'delete-pod',
      target: TARGET,
      dryRun: false,
      message: DELETED,
      details: { touched: TOUCHED, changed: true, eventRecorded: 'queued', owner: 'none' },
    },
    // the answer comes first and says the Event is queued; the warning follows it, naming the call
    log: [
      HANDLED_DELETED,
      {
        level: 'warn',
        message: 'the pod was deleted but the audit event could not be recorded',
        error:
          "create an event about the pod 'kubecon' in the namespace 'default' failed: the API server answered 403 Forbidden: events is forbidden (the function's " +
          "ServiceAccount lacks the permission 'create' on 'events': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)",
        eventId: '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f',
        target: { namespace: 'default', name: 'kubecon' },
      },
    ],
  },
  {
    // The API server checks only that an owner's kind is not empty: deleted as any owned pod, the kind quoted as received values are
    title: "quotes a controller kind that is no kind's name cut short and escaped: whoever creates the pod writes it",
    calls: [
      GET(POD, [200, podObject('default', 'kubecon', { ownerKind: `\u009b2J\u202e${'K'.repeat(100_000)}` })]),
      DELETE(POD, [200, podObject('default', 'kubecon')]),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'delete-pod',
      target: TARGET,
      dryRun: false,
      message: DELETED,
      details: { touched: TOUCHED, changed: true, eventRecorded: 'queued', owner: `"\\u009b2J\\u202e${'K'.repeat(65)}… (100016 characters)` },
    },
  },
  {
    title: "does not take a controller of kind 'none' for no controller: SKIP_OWNER_KINDS=none leaves only bare pods",
    env: { SKIP_OWNER_KINDS: 'none' },
    calls: [GET(POD, [200, podObject('default', 'kubecon', { ownerKind: 'none' })]), DELETE(POD, [200, podObject('default', 'kubecon')]), POST(EVENTS, STORED)],
    answer: {
      status: 'done',
      action: 'delete-pod',
      target: TARGET,
      dryRun: false,
      message: DELETED,
      details: { touched: TOUCHED, changed: true, eventRecorded: 'queued', owner: '"none"' },
    },
  },
  {
    title: 'leaves pods whose controller kind is listed in SKIP_OWNER_KINDS',
    env: { SKIP_OWNER_KINDS: 'DaemonSet,none' },
    calls: [GET(POD, [200, podObject('default', 'kubecon', { ownerKind: 'DaemonSet' })])],
    answer: {
      status: 'skipped',
      code: 'not-applicable',
      reason: "the pod 'kubecon' in the namespace 'default' is owned by a DaemonSet, which SKIP_OWNER_KINDS leaves alone",
      target: TARGET,
    },
  },
  {
    title: 'in dry-run mode reads the pod and reports what it would delete, changing nothing',
    env: { DRY_RUN: 'true' },
    calls: [GET(POD, [200, podObject('default', 'kubecon')])],
    answer: {
      status: 'done',
      action: 'delete-pod',
      target: TARGET,
      dryRun: true,
      message: "would delete the pod 'kubecon' in the namespace 'default' (grace period 1 s)",
      details: { touched: TOUCHED, changed: true, eventRecorded: false, owner: 'none' },
    },
  },
  {
    title: 'acts only on the rule "Terminal shell in container" unless configured otherwise',
    alert: alert('contact-k8s-api'),
    calls: [],
    answer: { status: 'skipped', code: 'rule-not-selected', reason: 'the rule "Contact K8S API Server From Container" is not one this action answers (RULES)' },
  },
  {
    title: "acts on every rule only when RULES is '*'",
    env: { RULES: '*' },
    alert: alert('contact-k8s-api'),
    calls: [
      GET('/api/v1/namespaces/openfaas-fn/pods/falco-pod-delete-7dc9f5fbb8-gbfk7', [200, podObject('openfaas-fn', 'falco-pod-delete-7dc9f5fbb8-gbfk7')]),
      DELETE('/api/v1/namespaces/openfaas-fn/pods/falco-pod-delete-7dc9f5fbb8-gbfk7', [200, podObject('openfaas-fn', 'falco-pod-delete-7dc9f5fbb8-gbfk7')]),
      POST('/api/v1/namespaces/openfaas-fn/events', STORED),
    ],
    answer: {
      status: 'done',
      action: 'delete-pod',
      target: { namespace: 'openfaas-fn', pod: 'falco-pod-delete-7dc9f5fbb8-gbfk7' },
      dryRun: false,
      message: "deleted the pod 'falco-pod-delete-7dc9f5fbb8-gbfk7' in the namespace 'openfaas-fn' (grace period 1 s)",
      details: { touched: [{ kind: 'Pod', namespace: 'openfaas-fn', name: 'falco-pod-delete-7dc9f5fbb8-gbfk7', changed: true }], changed: true, eventRecorded: 'queued', owner: 'none' },
    },
  },
  {
    title: 'answers 500 naming the missing permission when the API server refuses (403), and does not retry',
    calls: [
      GET(POD, [200, podObject('default', 'kubecon')]),
      DELETE(POD, [403, status(403, 'Forbidden', 'pods "kubecon" is forbidden: User "system:serviceaccount:falco-response:delete-pod" cannot delete resource "pods"')]),
    ],
    answer: {
      status: 'failed',
      error:
        "delete the pod 'kubecon' in the namespace 'default' failed: the API server answered 403 Forbidden: pods \"kubecon\" is forbidden: " +
        'User "system:serviceaccount:falco-response:delete-pod" cannot delete resource "pods" (the function\'s ServiceAccount lacks the ' +
        "permission 'delete' on 'pods': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)",
      target: TARGET,
    },
  },
  {
    title: 'retries 429 (honouring Retry-After) and 503, then succeeds',
    calls: [
      GET(POD, [429, status(429, 'TooManyRequests', 'slow down'), { 'Retry-After': '0' }]),
      GET(POD, [503, status(503, 'ServiceUnavailable', 'etcd leader changed')]),
      GET(POD, [200, podObject('default', 'kubecon')]),
      DELETE(POD, RESET),
      DELETE(POD, [200, podObject('default', 'kubecon')]),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'delete-pod',
      target: TARGET,
      dryRun: false,
      message: DELETED,
      details: { touched: TOUCHED, changed: true, eventRecorded: 'queued', owner: 'none' },
    },
  },
  {
    // FUNC_TIMEOUT of 1 s: the handler stops itself 100 ms before it
    title: 'gives up within its deadline when the API server does not answer',
    timeoutSeconds: 1,
    withinMs: 1000,
    calls: [GET(POD, [200, podObject('default', 'kubecon')], { delayMs: 5000 })],
    answer: {
      status: 'failed',
      error: /^get the pod 'kubecon' in the namespace 'default' did not finish before the function's deadline \((9\d\d|8\d\d) ms were left for it\)$/,
      target: TARGET,
    },
  },
];

describe('delete-pod', () => {
  actionCases(action, CASES);
});
