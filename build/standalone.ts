/**
 * The standalone target, manifests/standalone/: what Kubeless's controller would derive from each generated Function
 * (a ConfigMap with the code, a Deployment, a Service named after the function, on port 8080), written out directly,
 * so the same bundles run on a cluster that has nothing but Kubernetes. The pods run a stock Node image; the
 * Kubeless-compatible runtime of runtime/ ships in the ConfigMap next to the bundle.
 *
 * Everything the Function's pod gets (ServiceAccount, RBAC, parameters, security context, resources, and any volume
 * or variable a function declares) is taken from the Kubeless generator's own objects, not written a second time.
 */
import type {
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1ObjectMeta,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1Probe,
  V1Service,
} from '@kubernetes/client-node';
import { Document, isScalar, Scalar } from 'yaml';
import type { FunctionDescriptor } from '../lib/action';
import type { Bundle } from './bundle';
import { standaloneAvailability, standaloneImage, type DeploymentConfig } from './config';
import { functionObjects, HEADER, kustomizationYaml, namespaceObject, PART_OF, sha256Of, callersOf } from './manifests';

export const STANDALONE_DIR = 'standalone';
/** The runtime's file name in each ConfigMap, next to `<function>.js`. */
export const RUNTIME_FILE = 'kubeless-runtime.js';
/** Where Kubeless mounts the code (KUBELESS_INSTALL_VOLUME); the ConfigMap goes to the same place. */
export const INSTALL_VOLUME = '/kubeless';
/** The port Kubeless serves on and Falcosidekick calls (`kubeless.port`, default 8080). */
export const FUNCTION_PORT = 8080;
const CODE_VOLUME = 'kubeless';

/**
 * How long a pod keeps serving after SIGTERM, with readiness down (SHUTDOWN_DELAY_SECONDS of the runtime): the moment
 * kube-proxy and the Service's other consumers take to stop sending new calls to a deleted pod. Then the calls in
 * flight end, within FUNC_TIMEOUT; the grace period covers both, with room to spare.
 */
export const SHUTDOWN_DELAY_SECONDS = 5;
const GRACE_MARGIN_SECONDS = 5;

/**
 * The pod template annotation that changes with the code ConfigMap's content, so that rolling out a new bundle
 * restarts the pods: a ConfigMap mount is refreshed in place, but the runtime loaded the code once, at start.
 */
export const CODE_SHA_ANNOTATION = 'falco-response.io/code-sha256';

/** The API server refuses a ConfigMap whose data exceed 1 MiB. */
export const CONFIGMAP_LIMIT_BYTES = 1024 * 1024;
/** It refuses any object whose annotations exceed 256 KiB; a client-side apply adds a copy of the whole object. */
export const ANNOTATIONS_LIMIT_BYTES = 262144;
/** The build stops at three quarters of each limit: room for the bundles to grow before a release hits the wall. */
export const STANDALONE_BUDGET = { configMapBytes: CONFIGMAP_LIMIT_BYTES * 0.75, annotationBytes: ANNOTATIONS_LIMIT_BYTES * 0.75 };

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: V1ObjectMeta & { name: string };
}

/** The part of the generated Kubeless Function the standalone objects are derived from. */
interface KubelessFunction extends KubeObject {
  readonly kind: 'Function';
  readonly spec: {
    readonly handler: string;
    readonly timeout: string;
    readonly deployment: { readonly spec: { readonly template: { readonly metadata?: V1ObjectMeta; readonly spec: V1PodSpec } } };
  };
}

export interface StandaloneSizes {
  /** The ConfigMap's data as the API server counts it against its 1 MiB: keys and values, in bytes. */
  readonly configMapBytes: number;
  /** The ConfigMap's annotations after a client-side apply, last-applied copy included, in bytes. */
  readonly annotationBytes: number;
}

export interface StandaloneManifests {
  /** By path relative to manifests/. */
  readonly files: ReadonlyMap<string, string>;
  /** By function name. */
  readonly sizes: ReadonlyMap<string, StandaloneSizes>;
}

/** The object as Go's encoding/json writes it, as kubectl stores it: `<`, `>`, `&`, U+2028 and U+2029 escaped. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Bytes of an object's annotations once a client-side `kubectl apply` (-f or -k) has added its last-applied copy. */
export function annotationBytesAfterApply(object: { metadata?: V1ObjectMeta }): number {
  const own = Object.entries(object.metadata?.annotations ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  // The copy is the object without that annotation, as JSON, with the newline Go's json.Encoder ends it with.
  return own + Buffer.byteLength(LAST_APPLIED) + Buffer.byteLength(goJson(object)) + 1;
}

/** A ConfigMap's size as the API server checks it against its 1 MiB: every key and value of data and binaryData. */
export function configMapDataBytes(configMap: V1ConfigMap): number {
  const text = Object.entries(configMap.data ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  const binary = Object.entries(configMap.binaryData ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.from(v, 'base64').length, 0);
  return text + binary;
}

const byName = (name: string) => (o: { name: string }) => o.name === name;

/**
 * An empty value written the way the API server stores it, without `value`: were `value: ""` applied, every later
 * client-side apply would find the stored object different and patch the Deployment again.
 */
function asStored(variable: V1EnvVar): V1EnvVar {
  return variable.value === '' ? { name: variable.name } : variable;
}

function kubeletProbe(periodSeconds: number, initialDelaySeconds: number): V1Probe {
  return { httpGet: { path: '/healthz', port: FUNCTION_PORT }, initialDelaySeconds, periodSeconds };
}

/**
 * One function's standalone objects: those the Kubeless target also ships (ServiceAccount, RBAC, ...), then the
 * code ConfigMap, the Deployment, its PodDisruptionBudget and the Service Falcosidekick calls.
 */
export function standaloneObjects(
  descriptor: FunctionDescriptor,
  bundle: Bundle,
  runtime: Bundle,
  config: DeploymentConfig,
  callers: readonly string[],
): unknown[] {
  const { name } = descriptor;
  const namespace = config.namespace;
  if (`${name}.js` === RUNTIME_FILE) {
    throw new Error(`functions/${name}: the name is taken by the runtime's file in the standalone target's ConfigMap; rename the folder`);
  }
  const generated = functionObjects(descriptor, bundle, config, callers) as KubeObject[];
  const fn = generated.find((o): o is KubelessFunction => o.kind === 'Function');
  if (fn === undefined) throw new Error(`functions/${name}: the Kubeless generator made no Function to derive the standalone objects from`);
  const shared = generated.filter((o) => o !== fn);

  const [modName, funcHandler] = fn.spec.handler.split('.');
  const template = fn.spec.deployment.spec.template;
  const { containers, volumes = [], ...podRest } = template.spec;
  if (containers.length !== 1) throw new Error(`functions/${name}: the Function's pod template has ${containers.length} containers, expected 1`);
  const { env = [], resources, securityContext, volumeMounts = [], ...containerRest } = containers[0];
  if (volumes.some(byName(CODE_VOLUME)) || volumeMounts.some((m) => m.name === CODE_VOLUME || m.mountPath === INSTALL_VOLUME)) {
    throw new Error(`functions/${name}: the volume name '${CODE_VOLUME}' and the path ${INSTALL_VOLUME} are the standalone target's own`);
  }

  const { image, nodeMajor } = standaloneImage(config);
  const labels = { ...PART_OF, 'app.kubernetes.io/name': name };
  // Pods are selected by `function: <name>` exactly as Kubeless's are, so NetworkPolicies written for one target fit
  // the other; `created-by: kubeless` is left out, since Kubeless's controller claims objects that carry it.
  const selector = { function: name, ...PART_OF };
  const podLabels = { function: name, ...labels };

  const codeConfigMap: V1ConfigMap & KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      labels: podLabels,
      annotations: { 'falco-response.io/description': `the bundle of functions/${name}/ and the Kubeless-compatible runtime that serves it` },
    },
    data: { [`${name}.js`]: bundle.code, [RUNTIME_FILE]: runtime.code },
  };

  // The environment Kubeless's controller gives the runtime container, in its order, after the Function's own.
  const kubelessEnv: V1EnvVar[] = [
    { name: 'FUNC_HANDLER', value: funcHandler },
    { name: 'MOD_NAME', value: modName },
    { name: 'FUNC_TIMEOUT', value: fn.spec.timeout },
    // The Node that really runs: the image's, which the default keeps equal to the Kubeless runtime's.
    { name: 'FUNC_RUNTIME', value: `nodejs${nodeMajor}` },
    { name: 'FUNC_MEMORY_LIMIT', value: resources?.limits?.memory ?? '0' },
    { name: 'FUNC_PORT', value: String(FUNCTION_PORT) },
    { name: 'KUBELESS_INSTALL_VOLUME', value: INSTALL_VOLUME },
    { name: 'NODE_PATH', value: `${INSTALL_VOLUME}/node_modules` },
  ];
  // Not Kubeless's: the runtime's drain on SIGTERM (runtime/main.ts).
  const shutdownEnv: V1EnvVar[] = [{ name: 'SHUTDOWN_DELAY_SECONDS', value: String(SHUTDOWN_DELAY_SECONDS) }];
  const container: V1Container = {
    // Anything else the Function's container declares; the container is named after the function, as Kubeless does.
    ...containerRest,
    name,
    image,
    imagePullPolicy: 'IfNotPresent',
    command: ['node', `${INSTALL_VOLUME}/${RUNTIME_FILE}`],
    ports: [{ name: 'http', containerPort: FUNCTION_PORT, protocol: 'TCP' }],
    env: [...env, ...kubelessEnv, ...shutdownEnv].map(asStored),
    ...(resources === undefined ? {} : { resources }),
    ...(securityContext === undefined ? {} : { securityContext }),
    // Kubeless's liveness probe; readiness keeps a starting pod out of the Service until it answers, and takes a
    // draining one out (the runtime's /healthz answers 503 from SIGTERM on).
    livenessProbe: kubeletProbe(30, 3),
    readinessProbe: kubeletProbe(5, 1),
    volumeMounts: [...volumeMounts, { name: CODE_VOLUME, mountPath: INSTALL_VOLUME, readOnly: true }],
  };
  const { replicas, pdbApiVersion } = standaloneAvailability(config);
  const podSpec: V1PodSpec = {
    ...podRest,
    terminationGracePeriodSeconds: SHUTDOWN_DELAY_SECONDS + Number(fn.spec.timeout) + GRACE_MARGIN_SECONDS,
    // Replicas on different nodes where there are several, so that one node's drain or loss leaves one answering.
    affinity: {
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: selector }, topologyKey: 'kubernetes.io/hostname' } },
        ],
      },
    },
    containers: [container],
    volumes: [...volumes, { name: CODE_VOLUME, configMap: { name } }],
  };

  const deployment: V1Deployment & KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: podLabels, ...(fn.metadata.annotations === undefined ? {} : { annotations: fn.metadata.annotations }) },
    spec: {
      replicas,
      selector: { matchLabels: selector },
      // As Kubeless: the new pod is ready before the old one stops, so Falcosidekick always finds an endpoint.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: podLabels,
          // The Function template's own annotations (e.g. its config files' hash) come along.
          annotations: {
            ...template.metadata?.annotations,
            [CODE_SHA_ANNOTATION]: sha256Of(JSON.stringify(codeConfigMap.data)),
            'prometheus.io/scrape': 'true',
            'prometheus.io/path': '/metrics',
            'prometheus.io/port': String(FUNCTION_PORT),
          },
        },
        spec: podSpec,
      },
    },
  };

  // A drain or any other eviction takes at most one pod of the function at a time; with one replica configured it
  // is still allowed (a budget that forbids every eviction blocks node drains for good).
  const disruptionBudget: V1PodDisruptionBudget & KubeObject = {
    apiVersion: pdbApiVersion,
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace, labels: podLabels },
    spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
  };

  const service: V1Service & KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: podLabels },
    spec: {
      type: 'ClusterIP',
      selector,
      // The port Kubeless gives every function's Service, name included (the http- prefix is for service meshes).
      ports: [{ name: 'http-function-port', protocol: 'TCP', port: FUNCTION_PORT, targetPort: FUNCTION_PORT }],
    },
  };
  return [...shared, codeConfigMap, deployment, disruptionBudget, service];
}

/** Renders objects like the Kubeless files, with the code of a ConfigMap as literal blocks, byte for byte. */
export function toStandaloneYaml(objects: readonly unknown[]): string {
  const docs = objects.map((object) => {
    // Labels are shared between the Deployment and its template: written out twice, not as a YAML alias.
    const doc = new Document(object, { aliasDuplicateObjects: false });
    if ((object as KubeObject).kind === 'ConfigMap') {
      for (const key of Object.keys((object as V1ConfigMap).data ?? {})) {
        if (!key.endsWith('.js')) continue;
        const node = doc.getIn(['data', key], true);
        if (isScalar(node)) node.type = Scalar.BLOCK_LITERAL;
      }
    }
    return `---\n${doc.toString({ lineWidth: 0, indent: 2 })}`;
  });
  return HEADER + docs.join('');
}

/** Sizes of one function's objects; fails the build past the budget, naming the object and the figures. */
export function checkStandaloneSizes(name: string, objects: readonly unknown[]): StandaloneSizes {
  const problems: string[] = [];
  let sizes: StandaloneSizes | undefined;
  for (const object of objects as (KubeObject & V1ConfigMap)[]) {
    const what = `manifests/${STANDALONE_DIR}/${name}.yaml: the ${object.kind} '${object.metadata.name}'`;
    const annotationBytes = annotationBytesAfterApply(object);
    if (annotationBytes > STANDALONE_BUDGET.annotationBytes) {
      problems.push(
        `${what} would carry ${annotationBytes} bytes of annotations after a client-side apply ` +
          `(budget ${STANDALONE_BUDGET.annotationBytes}, limit ${ANNOTATIONS_LIMIT_BYTES})`,
      );
    }
    if (object.kind !== 'ConfigMap') continue;
    const configMapBytes = configMapDataBytes(object);
    if (configMapBytes > STANDALONE_BUDGET.configMapBytes) {
      problems.push(`${what} holds ${configMapBytes} bytes (budget ${STANDALONE_BUDGET.configMapBytes}, limit ${CONFIGMAP_LIMIT_BYTES})`);
    }
    if (object.metadata.name === name) sizes = { configMapBytes, annotationBytes };
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  if (sizes === undefined) throw new Error(`manifests/${STANDALONE_DIR}/${name}.yaml: no ConfigMap '${name}'`);
  return sizes;
}

/**
 * Every file of manifests/standalone/, by path relative to manifests/: one file per function, the namespace, and a
 * kustomization.yaml for `kubectl apply -k manifests/standalone/` (kustomize reads nothing outside its folder, hence
 * a namespace file of its own).
 */
export function generateStandalone(
  functions: readonly { descriptor: FunctionDescriptor; bundle: Bundle }[],
  runtime: Bundle,
  config: DeploymentConfig,
): StandaloneManifests {
  const files = new Map<string, string>();
  const sizes = new Map<string, StandaloneSizes>();
  files.set(`${STANDALONE_DIR}/00-namespace.yaml`, toStandaloneYaml([namespaceObject(config)]));
  const callers = callersOf(functions.map((f) => f.descriptor));
  for (const { descriptor, bundle } of functions) {
    const objects = standaloneObjects(descriptor, bundle, runtime, config, callers);
    files.set(`${STANDALONE_DIR}/${descriptor.name}.yaml`, toStandaloneYaml(objects));
    sizes.set(descriptor.name, checkStandaloneSizes(descriptor.name, objects));
  }
  const resources = [...files.keys()].map((f) => f.slice(STANDALONE_DIR.length + 1)).sort();
  files.set(`${STANDALONE_DIR}/kustomization.yaml`, kustomizationYaml(resources));
  return { files, sizes };
}
