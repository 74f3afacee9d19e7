import { readFileSync } from 'fs';
import * as D from 'io-ts/Decoder';
import { parse } from 'yaml';
import type { FunctionDescriptor } from '../lib/action';
import { decodeOrThrow, describeValue, literal, named, object, record, refined } from '../lib/decode';
import { isDns1123Label, isLabelValue, isQualifiedName, NAMESPACE_NAME_LABEL } from '../lib/names';
import { readParams } from '../lib/params';

const Quantities = object({}, { cpu: D.string, memory: D.string });

const LabelMap = record(refined(D.string, isLabelValue, 'a label value'), 'an object', refined(D.string, isQualifiedName, 'a label key'));
/** An empty namespace selector selects every namespace: a policy's peer would then admit those pods from anywhere. */
const NamespaceLabels = refined(LabelMap, (labels) => Object.keys(labels).length > 0, 'at least one namespace label (none would select every namespace)');

/**
 * A stock official Node.js image pinned to an exact version (`node:14.21.3-alpine`), optionally by digest and from a
 * mirror of the official library (`<mirror>/library/node:...`): a floating tag such as `node:14` or `node:lts` would
 * change what runs without a rebuild, and another publisher's `node` image is not the one the runtime was tested on.
 */
const NODE_IMAGE = /^(?:(?:[a-z0-9.-]+(?::\d+)?\/(?:[a-z0-9._-]+\/)*)?library\/)?node:(\d+)\.\d+\.\d+(?:-[a-z0-9][a-z0-9.-]*)?(?:@sha256:[0-9a-f]{64})?$/;

/** The Node major version of a pinned image; the runtime and the bundles need Node 12 or later. */
export function nodeMajorOf(image: string): number | undefined {
  const match = NODE_IMAGE.exec(image);
  return match === null || Number(match[1]) < 12 ? undefined : Number(match[1]);
}

const NodeImage = refined(
  D.string,
  (image) => nodeMajorOf(image) !== undefined,
  'the official node image pinned to an exact version of Node 12 or later, such as node:14.21.3-alpine',
);

/**
 * The image of the standalone target when falco-response.yaml names none: Node 24, an LTS line (maintained until
 * April 2028), pinned exactly. Node 14, Kubeless's nodejs14, reached its end of life in April 2023.
 */
export const DEFAULT_STANDALONE_IMAGE = 'node:24.22.3-alpine';

/** Two pods per function: one can be evicted, drained or rolled while the other answers. */
export const DEFAULT_STANDALONE_REPLICAS = 2;

/** policy/v1 from Kubernetes 1.21 (v1beta1 is gone from 1.25); policy/v1beta1 for 1.20 and older. */
export type PdbApiVersion = 'policy/v1' | 'policy/v1beta1';

const DeploymentConfig = object(
  {
    namespace: refined(D.string, isDns1123Label, 'a namespace name'),
    runtime: named('nodejs12 or nodejs14', literal('nodejs12', 'nodejs14')),
    timeoutSeconds: refined(D.number, (n) => Number.isInteger(n) && n >= 5 && n <= 600, 'a whole number of seconds from 5 to 600'),
    resources: object({ requests: Quantities, limits: Quantities }),
  },
  {
    functions: record(object({}, { parameters: record(D.string, 'environment variable names to text values') })),
    /** Who may call the functions: the generated NetworkPolicies admit these pods only. */
    callers: object(
      {},
      {
        falcosidekick: object(
          { namespace: refined(D.string, isDns1123Label, 'a namespace name'), podLabels: LabelMap },
          /** The labels that select Falcosidekick's namespace; by default its name label (set by Kubernetes 1.21+). */
          { namespaceLabels: NamespaceLabels },
        ),
      },
    ),
    /** The standalone target (manifests/standalone/): Deployments of a stock Node image, no Kubeless. */
    standalone: object(
      {},
      {
        image: NodeImage,
        replicas: refined(D.number, (n) => Number.isInteger(n) && n >= 1 && n <= 100, 'a whole number of replicas from 1 to 100'),
        podDisruptionBudgetApiVersion: named(
          'policy/v1 (Kubernetes 1.21 and later) or policy/v1beta1 (1.20 and older)',
          literal('policy/v1', 'policy/v1beta1'),
        ),
      },
    ),
  },
);
export type DeploymentConfig = D.TypeOf<typeof DeploymentConfig>;

export const CONFIG_FILE = 'falco-response.yaml';

export function loadConfig(file: string): DeploymentConfig {
  return decodeOrThrow(DeploymentConfig, parse(readFileSync(file, 'utf8')) as unknown, file);
}

/**
 * A function's environment: every declared parameter with its configured or default value, checked by decoding
 * it exactly as the function will at start-up, so a bad value fails the build rather than the first alert.
 */
export function parameterEnv(descriptor: FunctionDescriptor, config: DeploymentConfig): Record<string, string> {
  const configured = config.functions?.[descriptor.name]?.parameters ?? {};
  const declared = new Set(Object.values(descriptor.parameters).map((p) => p.env));
  const unknown = Object.keys(configured).filter((name) => !declared.has(name));
  if (unknown.length > 0) {
    throw new Error(
      `${CONFIG_FILE}: functions.${descriptor.name}.parameters: ${unknown.map((u) => describeValue(u)).join(', ')} ` +
        `is not a parameter of ${descriptor.name} (it has ${[...declared].join(', ')})`,
    );
  }
  const env: Record<string, string> = {};
  for (const spec of Object.values(descriptor.parameters)) env[spec.env] = configured[spec.env] ?? spec.defaultValue;
  try {
    readParams(descriptor.parameters, env);
  } catch (error) {
    throw new Error(`${CONFIG_FILE}: functions.${descriptor.name}.parameters: ${(error as Error).message}`);
  }
  return env;
}

export function checkConfiguredFunctions(config: DeploymentConfig, names: readonly string[]): void {
  const unknown = Object.keys(config.functions ?? {}).filter((n) => !names.includes(n));
  if (unknown.length > 0) {
    throw new Error(`${CONFIG_FILE}: functions: no function named ${unknown.join(', ')} in functions/ (there are ${names.join(', ')})`);
  }
}

/** The standalone target's image and the Node major version it runs. */
export function standaloneImage(config: DeploymentConfig): { readonly image: string; readonly nodeMajor: number } {
  const image = config.standalone?.image ?? DEFAULT_STANDALONE_IMAGE;
  return { image, nodeMajor: nodeMajorOf(image)! };
}

/** The standalone target's replicas per function and the API version of its PodDisruptionBudgets. */
export function standaloneAvailability(config: DeploymentConfig): { readonly replicas: number; readonly pdbApiVersion: PdbApiVersion } {
  return {
    replicas: config.standalone?.replicas ?? DEFAULT_STANDALONE_REPLICAS,
    pdbApiVersion: config.standalone?.podDisruptionBudgetApiVersion ?? 'policy/v1',
  };
}

/** The falcosidekick Helm chart's pod labels, in the falco chart's namespace. */
export const DEFAULT_FALCOSIDEKICK = { namespace: 'falco', podLabels: { 'app.kubernetes.io/name': 'falcosidekick' } };

export interface FalcosidekickCallers {
  readonly namespace: string;
  /** What the callers NetworkPolicy selects Falcosidekick's namespace by: never empty; by default its name label. */
  readonly namespaceLabels: Readonly<Record<string, string>>;
  readonly podLabels: Readonly<Record<string, string>>;
}

export function falcosidekickCallers(config: DeploymentConfig): FalcosidekickCallers {
  const configured = config.callers?.falcosidekick;
  const { namespace, podLabels } = configured ?? DEFAULT_FALCOSIDEKICK;
  return { namespace, podLabels, namespaceLabels: configured?.namespaceLabels ?? { [NAMESPACE_NAME_LABEL]: namespace } };
}
