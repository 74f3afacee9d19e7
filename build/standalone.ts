/**
 * The standalone target, manifests/standalone/: what Kubeless's controller would make of each function's Function
 * (a ConfigMap with the code, a Deployment, a Service named after the function, on port 8080), written out directly,
 * so the same bundles run on a cluster that has nothing but Kubernetes. The pods run a stock Node image; the
 * Kubeless-compatible runtime of runtime/ ships in the ConfigMap next to the bundle.
 *
 * Everything the Function's pod gets (ServiceAccount, RBAC, parameters, security context, resources, and any volume
 * or variable a function declares) comes from the same model as the Function (build/model.ts), not written twice.
 */
import type { V1ConfigMap, V1Container, V1Deployment, V1EnvVar, V1ObjectMeta, V1PodDisruptionBudget, V1PodSpec, V1Probe, V1Service } from '@kubernetes/client-node';
import { FUNCTION_PORT, INSTALL_VOLUME, runtimeEnv } from '../lib/kubeless';
import type { Bundle } from './bundle';
import { standaloneAvailability, standaloneImage, type DeploymentConfig } from './config';
import { kustomizationYaml, namespaceObject, sha256Of, toYaml } from './manifests';
import { PART_OF, sharedObjects, type FunctionModel, type Manifest } from './model';

export const STANDALONE_DIR = 'standalone';
/** The runtime's file name in each ConfigMap, next to `<function>.js`. */
export const RUNTIME_FILE = 'kubeless-runtime.js';
/** The code's volume, mounted where Kubeless mounts the code (KUBELESS_INSTALL_VOLUME). */
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
export function standaloneObjects(model: FunctionModel, runtime: Bundle, config: DeploymentConfig): Manifest[] {
  const { name, namespace, bundle } = model;
  if (`${name}.js` === RUNTIME_FILE) {
    throw new Error(`functions/${name}: the name is taken by the runtime's file in the standalone target's ConfigMap; rename the folder`);
  }
  const {
    containers: [{ env = [], resources, securityContext, volumeMounts = [], ...containerRest }],
    volumes = [],
    ...podRest
  } = model.pod.spec;
  if (volumes.some(byName(CODE_VOLUME)) || volumeMounts.some((m) => m.name === CODE_VOLUME || m.mountPath === INSTALL_VOLUME)) {
    throw new Error(`functions/${name}: the volume name '${CODE_VOLUME}' and the path ${INSTALL_VOLUME} are the standalone target's own`);
  }

  const { image, nodeMajor } = standaloneImage(config);
  // Pods are selected by `function: <name>` exactly as Kubeless's are, so NetworkPolicies written for one target fit
  // the other; `created-by: kubeless` is left out, since Kubeless's controller claims objects that carry it.
  const selector = { function: name, ...PART_OF };
  const podLabels = { function: name, ...model.labels };

  const codeConfigMap: Manifest<V1ConfigMap> = {
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

  // The environment Kubeless's controller gives the runtime container, after the function's own; last the runtime's
  // drain on SIGTERM (runtime/main.ts), which is not Kubeless's.
  const kubelessEnv = runtimeEnv({
    modName: name,
    installVolume: INSTALL_VOLUME,
    timeoutSeconds: model.timeoutSeconds,
    // The Node that really runs: the image's, which the default keeps equal to the Kubeless runtime's.
    runtime: `nodejs${nodeMajor}`,
    memoryLimit: resources?.limits?.memory ?? '0',
    port: FUNCTION_PORT,
    shutdownDelaySeconds: SHUTDOWN_DELAY_SECONDS,
  });
  const container: V1Container = {
    // Anything else the model's container declares; the container is named after the function, as Kubeless does.
    ...containerRest,
    name,
    image,
    imagePullPolicy: 'IfNotPresent',
    command: ['node', `${INSTALL_VOLUME}/${RUNTIME_FILE}`],
    ports: [{ name: 'http', containerPort: FUNCTION_PORT, protocol: 'TCP' }],
    env: [...env, ...Object.entries(kubelessEnv).map(([variable, value]) => ({ name: variable, value }))].map(asStored),
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
    terminationGracePeriodSeconds: SHUTDOWN_DELAY_SECONDS + model.timeoutSeconds + GRACE_MARGIN_SECONDS,
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

  const deployment: Manifest<V1Deployment> = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: podLabels, annotations: { ...model.annotations } },
    spec: {
      replicas,
      selector: { matchLabels: selector },
      // As Kubeless: the new pod is ready before the old one stops, so Falcosidekick always finds an endpoint.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: podLabels,
          // The pod's own annotations (e.g. its config files' hash) come along.
          annotations: {
            ...model.pod.annotations,
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
  const disruptionBudget: Manifest<V1PodDisruptionBudget> = {
    apiVersion: pdbApiVersion,
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace, labels: podLabels },
    spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
  };

  const service: Manifest<V1Service> = {
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
  return [...sharedObjects(model), codeConfigMap, deployment, disruptionBudget, service];
}

const isConfigMap = (object: Manifest): object is Manifest<V1ConfigMap> => object.kind === 'ConfigMap';

/** Sizes of one function's objects; fails the build past the budget, naming the object and the figures. */
export function checkStandaloneSizes(name: string, objects: readonly Manifest[]): StandaloneSizes {
  const problems: string[] = [];
  let sizes: StandaloneSizes | undefined;
  for (const object of objects) {
    const what = `manifests/${STANDALONE_DIR}/${name}.yaml: the ${object.kind} '${object.metadata.name}'`;
    const annotationBytes = annotationBytesAfterApply(object);
    if (annotationBytes > STANDALONE_BUDGET.annotationBytes) {
      problems.push(
        `${what} would carry ${annotationBytes} bytes of annotations after a client-side apply ` +
          `(budget ${STANDALONE_BUDGET.annotationBytes}, limit ${ANNOTATIONS_LIMIT_BYTES})`,
      );
    }
    if (!isConfigMap(object)) continue;
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
export function generateStandalone(models: readonly FunctionModel[], runtime: Bundle, config: DeploymentConfig): StandaloneManifests {
  const files = new Map<string, string>();
  const sizes = new Map<string, StandaloneSizes>();
  files.set(`${STANDALONE_DIR}/00-namespace.yaml`, toYaml([namespaceObject(config)]));
  for (const model of models) {
    const objects = standaloneObjects(model, runtime, config);
    files.set(`${STANDALONE_DIR}/${model.name}.yaml`, toYaml(objects));
    sizes.set(model.name, checkStandaloneSizes(model.name, objects));
  }
  const resources = [...files.keys()].map((f) => f.slice(STANDALONE_DIR.length + 1)).sort();
  files.set(`${STANDALONE_DIR}/kustomization.yaml`, kustomizationYaml(resources));
  return { files, sizes };
}
