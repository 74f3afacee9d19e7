import type { V1Pod } from '@kubernetes/client-node';
import { definePodAction, touchedPod, type ActionCheckInput } from '../../lib/action';
import type { FalcoAlert } from '../../lib/alert';
import type { Check } from '../../lib/checks';
import { describePod, mergePatchPod, replacedReason } from '../../lib/kube/pods';
import { integerText, param, type ParamValues } from '../../lib/params';
import { annotationPrefixText, describeLabels, labelItemsText, planLabelling } from './plan';

const parameters = {
  labels: param(
    'LABELS',
    labelItemsText,
    'falco.org/flagged=true,falco.org/rule={rule},falco.org/priority={priority}',
    "labels set on the pod, comma-separated: key=value, key={rule} or key={priority} (the alert's, made a valid label value: " +
      "invalid characters become '-', and a changed or cut value ends with '-' and 8 hex digits of the SHA-256 of the original), " +
      'or key- to remove a label; no other label is ever touched',
  ),
  annotationPrefix: param(
    'ANNOTATION_PREFIX',
    annotationPrefixText,
    'falco.org',
    'the annotations PREFIX/rule, PREFIX/priority, PREFIX/time, PREFIX/uuid and PREFIX/output describe the alert that marked the pod; empty: no annotations',
  ),
  outputMaxBytes: param(
    'OUTPUT_ANNOTATION_MAX_BYTES',
    integerText(0, 65536),
    '4096',
    "the alert's output text is cut to this many bytes in its annotation (and to what the 256 KiB of a pod's annotations leave); 0: no output annotation",
  ),
};
type LabelPodParams = typeof parameters;

const planFor = (alert: FalcoAlert, pod: V1Pod, params: ParamValues<LabelPodParams>) =>
  planLabelling(alert, pod, { labels: params.labels, annotationPrefix: params.annotationPrefix, outputMaxBytes: params.outputMaxBytes });

/** LABELS that only remove labels the pod does not carry, and no annotations: there is nothing to write at all. */
const nothingToWrite: Check<ActionCheckInput<LabelPodParams, 'pod'>> = {
  name: 'nothing-to-write',
  description: 'when `LABELS` and `ANNOTATION_PREFIX` leave nothing to set or remove on the pod, it is skipped, code `not-applicable`.',
  check: ({ alert, target, params }) => {
    const plan = planFor(alert, target.found, params);
    if (plan.patch !== undefined || Object.keys(plan.set).length + plan.removed.length + Object.keys(plan.annotations).length > 0) return undefined;
    return { code: 'not-applicable', reason: `nothing to write on ${describePod(target.pod)}${plan.notes.map((n) => `; ${n}`).join('')}` };
  },
};

export default definePodAction({
  name: 'label-pod',
  description:
    'Labels and annotates the pod named by the alert (rule, priority, alert uuid and output), so that people and policies can find it; it keeps running.',
  // Marking is harmless and cheap: every rule from Notice up, unless configured otherwise.
  guardDefaults: { rules: '*', minimumPriority: 'Notice' },
  parameters,
  permissions: [
    { apiGroup: '', resource: 'pods', verbs: ['get', 'patch'] },
    { apiGroup: '', resource: 'events', verbs: ['create'] },
  ],
  checks: [nothingToWrite],
  async run({ alert, target, params, kube, deadline, dryRun }) {
    const { pod, found } = target;
    const plan = planFor(alert, found, params);
    const notes = plan.notes.map((n) => `; ${n}`).join('');
    const labels = describeLabels(plan) || 'no label: annotations only';
    const facts = { labels: plan.set, removed: plan.removed, notes: plan.notes };
    if (plan.patch === undefined) {
      return { status: 'done', message: `${describePod(pod)} is already labelled (${labels}): nothing to change${notes}`, touched: [touchedPod(pod, false)], facts };
    }
    if (dryRun) {
      return { status: 'done', message: `would label ${describePod(pod)} (${labels})${notes}`, touched: [touchedPod(pod, true)], facts: { ...facts, patch: plan.patch } };
    }
    const patched = await mergePatchPod(kube, pod, plan.patch, deadline);
    if (patched.outcome === 'gone') {
      return { status: 'skipped', code: 'pod-gone', reason: `${describePod(pod)} was deleted before it could be labelled` };
    }
    if (patched.outcome === 'replaced') {
      return { status: 'skipped', code: 'pod-gone', reason: replacedReason(pod, found.metadata?.uid) };
    }
    return {
      status: 'done',
      message: `labelled ${describePod(pod)} (${labels})${notes}`,
      touched: [touchedPod(pod, true)],
      audit: { reason: 'FalcoResponseLabeled', what: `labelled the pod (${labels})`, change: 'labelled' },
      facts,
    };
  },
});
