/** The forwarder's descriptor, its parameters (read and checked once, at load) and its routing table (followed). */
import { Admission, admissionParams } from '../admission';
import { TEST_EVENT } from '../entry';
import { logSecretSetting, OUTBOUND_SECRET_ENV, readSecret } from '../auth';
import * as path from 'path';
import type { ConfigFile, FunctionDescriptor } from '../action';
import { describeValue } from '../decode';
import { FUNCTION_PORT } from '../kubeless';
import { readOptional, SERVICEACCOUNT_DIR } from '../kube/connection';
import { isDns1123Label } from '../names';
import { ConfigurationError, integerText, param, readParams, textCodec, type ParamValues } from '../params';
import type { Logger } from '../log';
import { RepeatMemory } from '../repeats';
import { Semaphore } from '../semaphore';
import { ActionCaller } from './invoke';
import { FollowedFile } from './followed-file';
import { Notifier, NOTIFIER_SECRET_KEYS, NOTIFIER_SECRET_NAME, readNotifierSettings, shownUrl, type NotifierLimits } from './notifier';
import { parseRoutingTable, type RoutingTable } from './routes';

/** The environment variable that holds the routing table's path (the generator points it at the mounted ConfigMap). */
export const ROUTES_ENV = 'ROUTES_FILE';
/** Filled with the pod's namespace by the generator (downward API): the forwarder gets no ServiceAccount token. */
export const NAMESPACE_ENV = 'POD_NAMESPACE';

const OPTIONAL_NAMESPACE = "a namespace name (lowercase letters, digits and '-', at most 63), or nothing for the forwarder's own";
const optionalNamespaceText = textCodec<string | undefined>(
  (s) => (s.trim() === '' ? { value: undefined } : isDns1123Label(s.trim()) ? { value: s.trim() } : { expected: OPTIONAL_NAMESPACE }),
  (s) => s ?? '',
);

const ENDPOINTS = 'a JSON object of action names to http:// URLs, such as {"delete-pod":"http://127.0.0.1:9001/"}';
/** ACTION_ENDPOINTS: for local runs, where the actions listen on localhost rather than behind their Services. */
export const endpointsText = textCodec<ReadonlyMap<string, URL>>(
  (s) => {
    if (s.trim() === '') return { value: new Map<string, URL>() };
    let parsed: unknown;
    try {
      parsed = JSON.parse(s) as unknown;
    } catch {
      return { expected: `${ENDPOINTS} (this is not JSON)` };
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { expected: ENDPOINTS };
    const endpoints = new Map<string, URL>();
    for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
      if (!isDns1123Label(name)) return { expected: `${ENDPOINTS} (${describeValue(name)} is not an action name)` };
      let url: URL | undefined;
      try {
        url = typeof value === 'string' ? new URL(value) : undefined;
      } catch {
        url = undefined;
      }
      if (url === undefined || url.protocol !== 'http:') {
        return { expected: `${ENDPOINTS} (the value for ${name}, ${describeValue(value)}, is not an http:// URL)` };
      }
      endpoints.set(name, url);
    }
    return { value: endpoints };
  },
  (m) => JSON.stringify(Object.fromEntries([...m].map(([k, v]) => [k, v.href]))),
);

function forwarderParams() {
  return {
    actionsNamespace: param(
      'ACTIONS_NAMESPACE',
      optionalNamespaceText,
      '',
      `the namespace of the actions' Services (http://<action>.<namespace>.svc.cluster.local:${FUNCTION_PORT}/); empty: the forwarder's own`,
    ),
    actionEndpoints: param('ACTION_ENDPOINTS', endpointsText, '', `for local runs: ${ENDPOINTS}; an action named here is called there`),
    callTimeoutSeconds: param(
      'CALL_TIMEOUT_SECONDS',
      integerText(1, 600),
      '10',
      "the longest wait for one action's answer; never past the forwarder's own deadline (FUNC_TIMEOUT)",
    ),
    maxConcurrentCalls: param(
      'MAX_CONCURRENT_CALLS',
      integerText(1, 256),
      '8',
      'calls to actions in flight at once, over all alerts; the others wait for a free slot until the deadline',
    ),
    ...admissionParams(),
  };
}
type ForwarderParams = ReturnType<typeof forwarderParams>;

export interface Forwarder extends FunctionDescriptor<ForwarderParams> {
  readonly kind: 'forwarder';
  readonly configFiles: readonly ConfigFile[];
  readonly namespaceEnv: string;
}

export interface ForwarderSpec {
  readonly name: string;
  readonly description: string;
  /** The default routing table (routes.default.json of the function's folder), shipped in its ConfigMap. */
  readonly defaultRoutes: unknown;
}

/** Declares the forwarder: no Kubernetes permission at all, a routing table in a ConfigMap, its namespace given. */
export function defineForwarder(spec: ForwarderSpec): Forwarder {
  const name = spec.name;
  return {
    kind: 'forwarder',
    name,
    description: spec.description,
    requiredFields: ['k8s.ns.name'],
    checks: [TEST_EVENT],
    parameters: forwarderParams(),
    permissions: [],
    configFiles: [
      {
        name: 'routes.json',
        env: ROUTES_ENV,
        description: 'the routing table: which actions run for which alerts',
        content: `${JSON.stringify(spec.defaultRoutes, null, 2)}\n`,
        read: 'followed',
        check: (content, { functions }) => {
          const result = parseRoutingTable(content, { self: name, functions });
          return result.ok ? [] : result.problems;
        },
      },
    ],
    namespaceEnv: NAMESPACE_ENV,
    callsFunctions: true,
    optionalSecrets: NOTIFIER_SECRET_KEYS.map((k) => ({ secret: NOTIFIER_SECRET_NAME, ...k })),
  };
}

/** The routing table in effect and an address for every action it names: always taken together. */
export interface Routing {
  readonly table: RoutingTable;
  readonly urls: ReadonlyMap<string, URL>;
}

export interface Ready {
  readonly params: ParamValues<ForwarderParams>;
  /** The mounted routing table, followed while the function runs (an edited ConfigMap takes effect without restart). */
  readonly routing: FollowedFile<Routing>;
  /** The actions' namespace when known: sent as event-namespace, as Falcosidekick sends the function's. */
  readonly namespace: string | undefined;
  readonly caller: ActionCaller;
  readonly limiter: Semaphore;
  /** How many alerts are forwarded at once, and how many wait (lib/admission.ts). */
  readonly admission: Admission;
  /** Sent to the actions when set. */
  readonly outboundSecret: string | undefined;
  /** Told what the actions did, when the Secret falco-response-notifier gives it a URL (lib/router/notifier.ts). */
  readonly notifier: Notifier | undefined;
  /**
   * The actions' answers that settled a target, by action and alike alert (lib/router/runner.ts settledKey): for as
   * long as the action said (`settles`), an alike alert is answered from it without calling the action again.
   */
  readonly settled: RepeatMemory<SettledBy>;
}

/** An action's answer that settled a target: for how long it said alike alerts are answered from it, and by which alert. */
export interface SettledBy {
  readonly seconds: number;
  readonly by: string;
}

/** The longest an action may say its answer settles a target for (its SETTLED_SECONDS, lib/guards.ts). */
export const MAX_SETTLED_SECONDS = 3600;

function ownNamespace(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const fromEnv = env[NAMESPACE_ENV]?.trim();
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!isDns1123Label(fromEnv)) throw new ConfigurationError([`${NAMESPACE_ENV}: expected a namespace name, got ${describeValue(fromEnv)}`]);
    return fromEnv;
  }
  const fromFile = readOptional(path.join(env.KUBE_SERVICEACCOUNT_DIR ?? SERVICEACCOUNT_DIR, 'namespace'));
  return fromFile !== undefined && isDns1123Label(fromFile) ? fromFile : undefined;
}

/** A routing table's text made usable: parsed, checked, and every action it names given an address. */
function routingOf(
  text: string,
  file: string,
  forwarder: Forwarder,
  namespace: string | undefined,
  endpoints: ReadonlyMap<string, URL>,
): Routing {
  const parsed = parseRoutingTable(text, { self: forwarder.name });
  if (!parsed.ok) throw new ConfigurationError(parsed.problems.map((p) => `the routing table ${file}: ${p}`));
  const urls = new Map<string, URL>();
  const unreachable: string[] = [];
  for (const action of parsed.table.actions) {
    const url =
      endpoints.get(action) ?? (namespace === undefined ? undefined : new URL(`http://${action}.${namespace}.svc.cluster.local:${FUNCTION_PORT}/`));
    if (url === undefined) unreachable.push(action);
    else urls.set(action, url);
  }
  if (unreachable.length > 0) {
    throw new ConfigurationError([
      `no address for the action(s) ${unreachable.join(', ')}: the forwarder's namespace is unknown (set ACTIONS_NAMESPACE, or ` +
        `${NAMESPACE_ENV} as the generated Function does) and ACTION_ENDPOINTS does not name them`,
    ]);
  }
  return { table: parsed.table, urls };
}

/**
 * Reads and checks the parameters once, at load (a bad one throws), and starts following the routing table: its
 * problems, at load or after an edit, are the table's state (Ready.routing), logged by it, not thrown here.
 */
export function prepare(
  forwarder: Forwarder,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  now: () => number,
  notifierLimits?: NotifierLimits,
): Ready {
  // Checked like the inbound one: a secret Node refuses as a header value would fail every forwarded call. The
  // notifier's URL is a secret as well: unusable, it stops the start, every problem said at once.
  const outbound = readSecret(env, OUTBOUND_SECRET_ENV);
  const problems: string[] = outbound.kind === 'broken' ? [outbound.problem] : [];
  let notifySettings: ReturnType<typeof readNotifierSettings>;
  try {
    notifySettings = readNotifierSettings(env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0) {
    let others: readonly string[] = [];
    try {
      readParams(forwarder.parameters, env);
    } catch (error) {
      if (error instanceof ConfigurationError) others = error.problems;
    }
    throw new ConfigurationError([...problems, ...others]);
  }
  logSecretSetting(outbound, OUTBOUND_SECRET_ENV, 'the actions are called without one, and refuse the calls if they require one', log);
  const params = readParams(forwarder.parameters, env);
  const file = env[ROUTES_ENV];
  if (file === undefined || file.trim() === '') {
    throw new ConfigurationError([
      `${ROUTES_ENV}: not set; it must hold the path of the routing table (the generated Function mounts the ConfigMap ${forwarder.name}-config and sets it)`,
    ]);
  }
  const namespace = params.actionsNamespace ?? ownNamespace(env);
  const routing = new FollowedFile<Routing>(
    { env: ROUTES_ENV, file, what: 'the routing table' },
    (text) => routingOf(text, file, forwarder, namespace, params.actionEndpoints),
    log,
    now,
  );
  return {
    params,
    routing,
    namespace,
    caller: new ActionCaller(params.maxConcurrentCalls),
    limiter: new Semaphore(params.maxConcurrentCalls),
    admission: new Admission(params, { log, now }),
    outboundSecret: outbound.kind === 'set' ? outbound.value : undefined,
    notifier: notifierOf(notifySettings, log, now, notifierLimits),
    // At most REPEAT_MEMORY_ENTRIES of a few hundred bytes each; each is used only for as long as its action said.
    settled: new RepeatMemory<SettledBy>({ now, maxAgeMs: MAX_SETTLED_SECONDS * 1000 }),
  };
}

function notifierOf(settings: ReturnType<typeof readNotifierSettings>, log: Logger, now: () => number, limits: NotifierLimits | undefined): Notifier | undefined {
  if (settings === undefined) return undefined;
  log.info(`the notifier is on: a ${settings.format} summary of what the actions did goes to the webhook (path not shown)`, {
    webhook: shownUrl(settings.url),
    notifyOn: settings.on.join(','),
  });
  return new Notifier(settings, log, now, limits);
}
