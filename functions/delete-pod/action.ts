import type { V1Pod } from '@kubernetes/client-node';
import { definePodAction, touchedPod, type ActionCheckInput } from '../../lib/action';
import type { Check } from '../../lib/checks';
import { describeValue } from '../../lib/decode';
import { deletePod, describePod, replacedReason } from '../../lib/kube/pods';
import { integerText, listText, param } from '../../lib/params';

/** `none` stands for a bare pod, one no controller owns (nothing will recreate it). */
const BARE_POD = 'none';

/** A kind's name, as SKIP_OWNER_KINDS lists them. */
const KIND_NAME = /^[A-Z][A-Za-z0-9]{0,62}$/;

const ownerKinds = listText(`owner kinds such as DaemonSet, ReplicaSet, StatefulSet or '${BARE_POD}'`, (kind) => kind === BARE_POD || KIND_NAME.test(kind));

/**
 * The kind of the pod's controller. Whoever creates a pod may write any non-empty text there (the API server checks
 * no more), so one that is no kind's name is quoted, cut short and escaped, and can never read as `none`.
 */
function controllerKind(pod: V1Pod): string {
  const kind = pod.metadata?.ownerReferences?.find((owner) => owner.controller === true)?.kind;
  if (kind === undefined) return BARE_POD;
  return KIND_NAME.test(kind) ? kind : describeValue(kind);
}

const skipOwnerKinds: Check<ActionCheckInput<DeletePodParams, 'pod'>> = {
  name: 'skip-owner-kinds',
  description: "a pod whose controller is of one of `SKIP_OWNER_KINDS` (`none`: a bare pod) is left alone, code `not-applicable`.",
  check: ({ target, params }) => {
    const owner = controllerKind(target.found);
    if (!params.skipOwnerKinds.includes(owner)) return undefined;
    return {
      code: 'not-applicable',
      reason: `${describePod(target.pod)} is ${owner === BARE_POD ? 'a bare pod' : `owned by a ${owner}`}, which SKIP_OWNER_KINDS leaves alone`,
    };
  },
};

/**
 * A pod already terminating, as fast as we would make it: a burst of alerts from one pod deletes it once, not once per
 * alert. A longer grace period someone else gave it is cut short by our DELETE, so that one is deleted again.
 */
const alreadyTerminating: Check<ActionCheckInput<DeletePodParams, 'pod'>> = {
  name: 'already-terminating',
  description: 'a pod already being deleted with a grace period no longer than `GRACE_PERIOD_SECONDS` is left to finish, code `pod-gone`.',
  check: ({ target, params }) => {
    const terminating = target.found.metadata?.deletionTimestamp;
    const theirGrace = target.found.metadata?.deletionGracePeriodSeconds;
    if (terminating === undefined || theirGrace === undefined || theirGrace > params.gracePeriodSeconds) return undefined;
    return {
      code: 'pod-gone',
      reason: `${describePod(target.pod)} is already being deleted (since ${String(terminating)}, grace period ${theirGrace} s): deleting it again would not hasten it`,
    };
  },
};

const parameters = {
  gracePeriodSeconds: param(
    'GRACE_PERIOD_SECONDS',
    integerText(0, 3600),
    '1',
    'seconds the pod gets to stop before it is killed (1 is `kubectl delete --now`; 0 removes it from the API at once)',
  ),
  skipOwnerKinds: param(
    'SKIP_OWNER_KINDS',
    ownerKinds,
    '',
    `pods whose controller is of one of these kinds are left alone, comma-separated; '${BARE_POD}' means bare pods`,
  ),
};
type DeletePodParams = typeof parameters;

export default definePodAction({
  name: 'delete-pod',
  description: 'Deletes the pod named by the alert; its controller, if any, replaces it with a clean one.',
  guardDefaults: { rules: 'Terminal shell in container' },
  parameters,
  permissions: [
    { apiGroup: '', resource: 'pods', verbs: ['get', 'delete'] },
    { apiGroup: '', resource: 'events', verbs: ['create'] },
  ],
  checks: [skipOwnerKinds, alreadyTerminating],
  async run({ target, params, kube, deadline, dryRun }) {
    const { pod, found } = target;
    const facts = { owner: controllerKind(found) };
    const grace = params.gracePeriodSeconds;
    if (dryRun) {
      return { status: 'done', message: `would delete ${describePod(pod)} (grace period ${grace} s)`, touched: [touchedPod(pod, true)], facts };
    }
    const uid = found.metadata?.uid;
    const deleted = await deletePod(kube, pod, { gracePeriodSeconds: grace, uid }, deadline);
    // A 404 to a retry after a 429 reports someone else's deletion, not ours: skipped, and no Event that would claim it.
    if (deleted.outcome === 'already-gone') return { status: 'skipped', code: 'pod-gone', reason: `${describePod(pod)} is already deleted` };
    if (deleted.outcome === 'replaced') return { status: 'skipped', code: 'pod-gone', reason: replacedReason(pod, uid) };
    // Seen on a real API server: the first DELETE deleted the pod and its answer was lost. Reported and audited as
    // this deletion, not as "already deleted" with no Event on the pod.
    const answerLost = deleted.answerLost;
    return {
      status: 'done',
      message: `deleted ${describePod(pod)} (grace period ${grace} s${answerLost ? '; the answer to an earlier attempt was lost, and the retry found the pod gone' : ''})`,
      touched: [touchedPod(pod, true)],
      audit: { reason: 'FalcoResponseDeleted', what: 'deleted the pod', change: 'deleted' },
      facts,
    };
  },
});
