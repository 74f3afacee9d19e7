import { definePodAction } from '../../lib/action';
import { recordAudit } from '../../lib/audit';
import { describePod, mergePatchPod, replacedReason } from '../../lib/kube/pods';
import { integerText, param } from '../../lib/params';
import { annotationPrefixText, describeLabels, labelItemsText, planLabelling } from './plan';

export default definePodAction({
  name: 'label-pod',
  description:
    'Labels and annotates the pod named by the alert (rule, priority, alert uuid and output), so that people and policies can find it; it keeps running.',
  // Marking is harmless and cheap: every rule from Notice up, unless configured otherwise.
  guardDefaults: { rules: '*', minimumPriority: 'Notice' },
  parameters: {
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
  },
  permissions: [
    { apiGroup: '', resource: 'pods', verbs: ['get', 'patch'] },
    { apiGroup: '', resource: 'events', verbs: ['create'] },
  ],
  async run({ alert, target, pod, params, kube, log, deadline, dryRun }) {
    const plan = planLabelling(alert, pod, {
      labels: params.labels,
      annotationPrefix: params.annotationPrefix,
      outputMaxBytes: params.outputMaxBytes,
    });
    const notes = plan.notes.map((n) => `; ${n}`).join('');
    const labels = describeLabels(plan) || 'no label: annotations only';
    const details = { labels: plan.set, removed: plan.removed, notes: plan.notes };
    if (plan.patch === undefined) {
      if (Object.keys(plan.set).length + plan.removed.length + Object.keys(plan.annotations).length === 0) {
        return { status: 'skipped', code: 'not-applicable', reason: `nothing to write on ${describePod(target)}${notes}` };
      }
      return {
        status: 'done',
        message: `${describePod(target)} is already labelled (${labels}): nothing to change${notes}`,
        details: { ...details, changed: false },
      };
    }
    if (dryRun) {
      return { status: 'done', message: `would label ${describePod(target)} (${labels})${notes}`, details: { ...details, changed: true, patch: plan.patch } };
    }
    const patched = await mergePatchPod(kube, target, plan.patch, deadline);
    if (patched.outcome === 'gone') {
      return { status: 'skipped', code: 'pod-gone', reason: `${describePod(target)} was deleted before it could be labelled` };
    }
    if (patched.outcome === 'replaced') {
      return { status: 'skipped', code: 'pod-gone', reason: replacedReason(target, pod.metadata?.uid) };
    }
    const eventRecorded = await recordAudit({ alert, kube, log, deadline }, { ...target, uid: pod.metadata?.uid }, {
      action: 'label-pod',
      reason: 'FalcoResponseLabeled',
      what: `labelled the pod (${labels})`,
      change: 'labelled',
    });
    return {
      status: 'done',
      message: `labelled ${describePod(target)} (${labels})${notes}`,
      details: { ...details, changed: true, eventRecorded },
    };
  },
});
