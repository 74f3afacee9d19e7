import { isQualifiedName } from './names';
import { booleanText, commaList, namespaceListText, param, priorityText, textCodec, type ParamValues } from './params';

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
}

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
  };
}
export type GuardParams = ReturnType<typeof guardParams>;
export type GuardSettings = ParamValues<GuardParams>;

