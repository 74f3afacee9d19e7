import { isQualifiedName } from './names';
import { booleanText, commaList, integerText, namespaceListText, param, priorityText, textCodec, type ParamValues } from './params';

/** Namespaces never acted upon unless the operator says otherwise: the control plane's and our own neighbours'. */
export const DEFAULT_PROTECTED_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease', 'kubeless', 'falco', 'falco-response'];

/** Every rule (`*`), or the listed ones. */
export type RuleSelection = { readonly all: true } | { readonly all: false; readonly names: readonly string[] };

/** `*` selects every rule; otherwise rule names separated by commas, compared exactly. */
export const rulesText = textCodec<RuleSelection>(
  (s) => {
    if (s.trim() === '*') return { value: { all: true } };
    const names = commaList(s);
    return names.length === 0 ? { expected: "a comma-separated list of Falco rule names, or '*' for every rule" } : { value: { all: false, names } };
  },
  (r) => (r.all ? '*' : r.names.join(',')),
);

const qualifiedNameText = textCodec<string>(
  (s) => (isQualifiedName(s.trim()) ? { value: s.trim() } : { expected: 'a label key such as example.com/name' }),
  (s) => s,
);

/** What an action may change in the shared guards' defaults. */
export interface GuardDefaults {
  /** Rules the action answers by default: `*` must be an explicit choice. */
  readonly rules: string;
  readonly minimumPriority?: string;
  /** SETTLED_SECONDS: 0 for an action whose every alert is work of its own (capture-evidence's one Secret per alert). */
  readonly settledSeconds?: string;
}

/**
 * How long an alike alert is answered from the memory of the call that settled its target (lib/runner.ts): long
 * enough to absorb a burst of repeats (Falco repeats a rule on a pod as often as the behaviour does), short enough
 * that a response an admin undid is done again by the next repeat after it.
 */
export const DEFAULT_SETTLED_SECONDS = '10';

/** The guards every pod action shares, configured through the Function's environment. */
export function guardParams(defaults: GuardDefaults) {
  return {
    dryRun: param('DRY_RUN', booleanText, 'false', 'true: make every check and report what would be done, change nothing'),
    rules: param('RULES', rulesText, defaults.rules, "rules this action answers, comma-separated; '*' for every rule"),
    minimumPriority: param(
      'MINIMUM_PRIORITY',
      priorityText,
      defaults.minimumPriority ?? 'Debug',
      'alerts below this priority are skipped (Debug … Emergency)',
    ),
    protectedNamespaces: param(
      'PROTECTED_NAMESPACES',
      namespaceListText,
      DEFAULT_PROTECTED_NAMESPACES.join(','),
      "namespaces never acted upon, comma-separated (the function's own namespace is always added)",
    ),
    optOutKey: param(
      'OPT_OUT_KEY',
      qualifiedNameText,
      'falco-response.io/ignore',
      'a pod with this label or annotation set to "true" is left alone (for debugging)',
    ),
    settledSeconds: param(
      'SETTLED_SECONDS',
      integerText(0, 3600),
      defaults.settledSeconds ?? DEFAULT_SETTLED_SECONDS,
      'for this long after the action settled a target (changed it, or found it already so), an alert of the same rule and priority on the same ' +
        'container is answered from memory, `settled`, with no Kubernetes call; an undone response is done again by the first alert after it; 0: never',
    ),
  };
}
export type GuardParams = ReturnType<typeof guardParams>;
export type GuardSettings = ParamValues<GuardParams>;

