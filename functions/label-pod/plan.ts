import type { V1Pod } from '@kubernetes/client-node';
import type { FalcoAlert } from '../../lib/alert';
import { describeValue } from '../../lib/decode';
import { labelKeyExpectation, labelValueFrom } from '../../lib/labels';
import type { PodMetadataPatch } from '../../lib/kube/pods';
import { isDns1123Subdomain, isLabelValue } from '../../lib/names';
import { commaList, textCodec } from '../../lib/params';
import { printable } from '../../lib/text';

/** One item of LABELS: a fixed value, a value derived from the alert, or a removal (`key-`, as kubectl writes it). */
export type LabelItem =
  | { readonly kind: 'static'; readonly key: string; readonly value: string }
  | { readonly kind: 'derived'; readonly key: string; readonly from: AlertField }
  | { readonly kind: 'remove'; readonly key: string };

/** The alert fields a label value may come from, written `{rule}` and `{priority}` in LABELS. */
const ALERT_FIELDS = ['rule', 'priority'] as const;
type AlertField = (typeof ALERT_FIELDS)[number];

const LABELS_EXPECTED = 'a comma-separated list of key=value, key={rule}, key={priority} or key- (remove the label) items';

function parseItem(item: string): LabelItem | string {
  const equals = item.indexOf('=');
  const removal = equals === -1 && item.endsWith('-');
  if (equals === -1 && !removal) return `${describeValue(item)} has no '=' and does not end with '-'`;
  const key = (removal ? item.slice(0, -1) : item.slice(0, equals)).trim();
  const keyExpected = labelKeyExpectation(key);
  if (keyExpected !== undefined) return `the key ${describeValue(key)} is not ${keyExpected}`;
  if (removal) return { kind: 'remove', key };
  const value = item.slice(equals + 1).trim();
  const placeholder = /^\{(.*)\}$/.exec(value);
  if (placeholder !== null) {
    const field = ALERT_FIELDS.find((f) => f === placeholder[1]);
    return field === undefined
      ? `${describeValue(value)} is not a placeholder (there are ${ALERT_FIELDS.map((f) => `{${f}}`).join(' and ')})`
      : { kind: 'derived', key, from: field };
  }
  if (!isLabelValue(value)) {
    return `the value ${describeValue(value)} of ${describeValue(key)} is not a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`;
  }
  return { kind: 'static', key, value };
}

function itemText(item: LabelItem): string {
  switch (item.kind) {
    case 'static':
      return `${item.key}=${item.value}`;
    case 'derived':
      return `${item.key}={${item.from}}`;
    case 'remove':
      return `${item.key}-`;
  }
}

/**
 * LABELS: `falco.org/flagged=true,falco.org/rule={rule},falco.org/clean-`. Every key and fixed value is checked,
 * and a key may appear once: a bad list fails the build (and the start) rather than the first alert.
 */
export const labelItemsText = textCodec<readonly LabelItem[]>(
  (s) => {
    const raw = commaList(s);
    if (raw.length === 0) return { expected: `${LABELS_EXPECTED}, at least one` };
    const problems: string[] = [];
    const items: LabelItem[] = [];
    for (const text of raw) {
      const parsed = parseItem(text);
      if (typeof parsed === 'string') problems.push(parsed);
      else if (items.some((i) => i.key === parsed.key)) problems.push(`the key ${describeValue(parsed.key)} appears twice`);
      else items.push(parsed);
    }
    return problems.length === 0 ? { value: items } : { expected: `${LABELS_EXPECTED} (${problems.join('; ')})` };
  },
  (items) => items.map(itemText).join(','),
);

/** ANNOTATION_PREFIX: a DNS subdomain such as `falco.org`, or empty for no annotations. */
export const annotationPrefixText = textCodec<string>(
  (s) => {
    const prefix = s.trim();
    return prefix === '' || isDns1123Subdomain(prefix) ? { value: prefix } : { expected: 'a DNS subdomain such as falco.org (lowercase), or nothing for no annotations' };
  },
  (s) => s,
);

/** The API server refuses an object whose annotations (keys and values, in bytes) add up to more than 256 KiB. */
export const ANNOTATIONS_TOTAL_LIMIT = 256 * 1024;

/** Caps of the short annotations: they describe the alert, the output annotation gets what is configured. */
const RULE_ANNOTATION_MAX_BYTES = 1024;
const SHORT_ANNOTATION_MAX_BYTES = 128;

/** A few bytes of output would be only the "cut" notice: below this room the output annotation is left out. */
const MIN_USEFUL_OUTPUT_BYTES = 64;

/** Text cut to at most `maxBytes` of UTF-8 on a character boundary, saying how long it was. */
export function fitText(text: string, maxBytes: number): { readonly text: string; readonly cut: boolean; readonly bytes: number } {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return { text, cut: false, bytes };
  const suffix = `… (cut from ${bytes} bytes)`;
  let room = maxBytes - Buffer.byteLength(suffix, 'utf8');
  if (room < 0) return { text: '', cut: true, bytes };
  let kept = '';
  for (const character of text) {
    room -= Buffer.byteLength(character, 'utf8');
    if (room < 0) break;
    kept += character;
  }
  return { text: kept + suffix, cut: true, bytes };
}

const bytesOf = (entries: Iterable<[string, string | null]>) => {
  let total = 0;
  for (const [key, value] of entries) total += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value ?? '', 'utf8');
  return total;
};

export interface LabellingSettings {
  readonly labels: readonly LabelItem[];
  readonly annotationPrefix: string;
  readonly outputMaxBytes: number;
}

export interface LabellingPlan {
  /** Labels to set, in the order of LABELS. */
  readonly set: Readonly<Record<string, string>>;
  /** Label keys to remove. */
  readonly removed: readonly string[];
  /** Annotations to write (`null` removes one of ours that this alert has no value for). */
  readonly annotations: Readonly<Record<string, string | null>>;
  /** What was left out or cut, for the answer. */
  readonly notes: readonly string[];
  /** `undefined` when the pod already carries what is wanted: nothing to write. */
  readonly patch: PodMetadataPatch | undefined;
}

/** `falco.org/flagged=true, falco.org/clean-`: the change as kubectl's `label` command writes it. */
export function describeLabels(plan: Pick<LabellingPlan, 'set' | 'removed'>): string {
  return [...Object.entries(plan.set).map(([k, v]) => `${k}=${v}`), ...plan.removed.map((k) => `${k}-`)].join(', ');
}

/**
 * What to write on the pod for this alert, compared with the pod as it was read. The marking is the labels and the
 * rule and priority annotations: when the pod already carries them, nothing is written, so the same alert delivered
 * again, or more alerts of the same rule, leave the pod as the first one did (its time, uuid and output annotations
 * keep naming the alert that marked it).
 */
export function planLabelling(alert: FalcoAlert, pod: V1Pod, settings: LabellingSettings): LabellingPlan {
  const currentLabels = pod.metadata?.labels ?? {};
  const currentAnnotations = pod.metadata?.annotations ?? {};
  const labelNotes: string[] = [];
  const annotationNotes: string[] = [];
  const set: Record<string, string> = {};
  const removed: string[] = [];
  for (const item of settings.labels) {
    if (item.kind === 'remove') removed.push(item.key);
    else if (item.kind === 'static') set[item.key] = item.value;
    else {
      const derived = labelValueFrom(alert[item.from]);
      if (derived.ok) set[item.key] = derived.value;
      else labelNotes.push(`the label ${item.key} was left out: the alert's ${item.from} ${derived.reason}`);
    }
  }

  const annotations = alertAnnotations(alert, currentAnnotations, settings, annotationNotes);
  const marking = settings.annotationPrefix === '' ? [] : ['rule', 'priority'].map((n) => `${settings.annotationPrefix}/${n}`);
  const upToDate =
    Object.entries(set).every(([k, v]) => currentLabels[k] === v) &&
    removed.every((k) => !(k in currentLabels)) &&
    marking.every((k) => !(k in annotations) || currentAnnotations[k] === annotations[k]);

  const labels: Record<string, string | null> = { ...set };
  for (const key of removed) labels[key] = null;
  const hasLabels = Object.keys(labels).length > 0;
  const hasAnnotations = Object.keys(annotations).length > 0;
  const uid = pod.metadata?.uid;
  const patch: PodMetadataPatch | undefined =
    upToDate || (!hasLabels && !hasAnnotations)
      ? undefined
      : {
          metadata: {
            // A precondition: were the pod replaced by a new one of the same name, the API server refuses the patch.
            ...(uid === undefined ? {} : { uid }),
            ...(hasLabels ? { labels } : {}),
            ...(hasAnnotations ? { annotations } : {}),
          },
        };
  // What was cut from annotations that are not written would only mislead.
  const notes = patch === undefined ? labelNotes : [...labelNotes, ...annotationNotes];
  return { set, removed, annotations, notes, patch };
}

function alertAnnotations(
  alert: FalcoAlert,
  current: Readonly<Record<string, string>>,
  settings: LabellingSettings,
  notes: string[],
): Record<string, string | null> {
  const prefix = settings.annotationPrefix;
  if (prefix === '') return {};
  const key = (name: string) => `${prefix}/${name}`;
  // Alert text, escaped before it is measured and cut: `kubectl describe pod` prints annotations raw to a terminal.
  const short: [string, string | null][] = [
    [key('rule'), fitText(printable(alert.rule), RULE_ANNOTATION_MAX_BYTES).text],
    [key('priority'), alert.priority],
    [key('time'), fitText(printable(alert.time), SHORT_ANNOTATION_MAX_BYTES).text],
    // null: a uuid left by an earlier alert must not pass for this one's
    [key('uuid'), typeof alert.uuid === 'string' ? fitText(printable(alert.uuid), SHORT_ANNOTATION_MAX_BYTES).text : null],
  ];
  const ours = new Set([...short.map(([k]) => k), key('output')]);
  const others = bytesOf(Object.entries(current).filter(([k]) => !ours.has(k)));
  let room = ANNOTATIONS_TOTAL_LIMIT - others - bytesOf(short);
  if (room < 0) {
    notes.push(`no annotation was written: the pod's other annotations leave too little of the ${ANNOTATIONS_TOTAL_LIMIT} bytes Kubernetes allows`);
    return {};
  }
  const result: Record<string, string | null> = Object.fromEntries(short);
  room -= Buffer.byteLength(key('output'), 'utf8');
  if (settings.outputMaxBytes === 0) return result;
  const outputMax = Math.min(settings.outputMaxBytes, room);
  const outputText = printable(alert.output);
  if (Buffer.byteLength(outputText, 'utf8') > outputMax && outputMax < MIN_USEFUL_OUTPUT_BYTES) {
    result[key('output')] = null;
    notes.push(`the annotation ${key('output')} was left out: the pod's annotations leave too little room for it`);
    return result;
  }
  const output = fitText(outputText, outputMax);
  result[key('output')] = output.text;
  if (output.cut) notes.push(`the annotation ${key('output')} was cut to ${outputMax} bytes (the alert's output has ${output.bytes})`);
  return result;
}
