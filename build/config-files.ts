import { sha256 } from '../lib/hash';
import type { FunctionDescriptor } from '../lib/action';
import { AFTER_EDIT } from '../lib/after-edit';
import type { V1ConfigMap, V1EnvVar, V1ObjectMeta, V1Volume, V1VolumeMount } from '@kubernetes/client-node';

/** Where a function's ConfigMap is mounted; the Kubeless runtime owns /kubeless. */
export const CONFIG_MOUNT_PATH = '/etc/falco-response';
const VOLUME = 'config';

export const configMapName = (functionName: string) => `${functionName}-config`;

/** What the generator adds for a function's config files and namespace variable; all empty for most functions. */
export interface ConfigWiring {
  /** The ConfigMap `<function>-config`, when the function has config files. */
  readonly objects: readonly (V1ConfigMap & { readonly apiVersion: 'v1'; readonly kind: 'ConfigMap'; readonly metadata: V1ObjectMeta & { readonly name: string } })[];
  readonly env: readonly V1EnvVar[];
  readonly volumes: readonly V1Volume[];
  readonly volumeMounts: readonly V1VolumeMount[];
  /**
   * On the pod template: the content's hash, so that applying a changed ConfigMap from manifests/ also rolls the
   * pod, which a file read only at start needs (a followed file would not, but the roll does no harm).
   */
  readonly podAnnotations: Readonly<Record<string, string>>;
}

/**
 * The ConfigMap holding every config file of a function (keys sorted), its read-only mount, an environment variable
 * per file with the file's path, and the pod's namespace through the downward API when the function asks for it.
 */
export function configWiring(descriptor: FunctionDescriptor, namespace: string, labels: Readonly<Record<string, string>>): ConfigWiring {
  const files = [...(descriptor.configFiles ?? [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const namespaceEnv =
    descriptor.namespaceEnv === undefined ? [] : [{ name: descriptor.namespaceEnv, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }];
  if (files.length === 0) return { objects: [], env: namespaceEnv, volumes: [], volumeMounts: [], podAnnotations: {} };
  const name = configMapName(descriptor.name);
  const data = Object.fromEntries(files.map((f) => [f.name, f.content]));
  return {
    objects: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name,
          namespace,
          labels,
          annotations: {
            'falco-response.io/description': `configuration of ${descriptor.name}: ${files.map((f) => `${f.name}, ${f.description} (${AFTER_EDIT[f.read]})`).join('; ')}`,
          },
        },
        data,
      },
    ],
    env: [...files.map((f) => ({ name: f.env, value: `${CONFIG_MOUNT_PATH}/${f.name}` })), ...namespaceEnv],
    volumes: [{ name: VOLUME, configMap: { name } }],
    volumeMounts: [{ name: VOLUME, mountPath: CONFIG_MOUNT_PATH, readOnly: true }],
    podAnnotations: { 'falco-response.io/config-sha256': sha256(JSON.stringify(data), 'hex') },
  };
}

const CONFIG_KEY = /^[-._a-zA-Z0-9]{1,253}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

/**
 * Checks every function's config files at build time: names a ConfigMap can hold, variables that collide with no
 * parameter, and each default content as the function itself will check it. Throws naming the function and file.
 */
export function checkConfigFiles(descriptors: readonly FunctionDescriptor[]): void {
  const functions = descriptors.map((d) => d.name);
  for (const d of descriptors) {
    // Kubeless names a Function's code ConfigMap after the Function: a function called `<x>-config` would collide.
    if ((d.configFiles ?? []).length > 0 && functions.includes(configMapName(d.name))) {
      throw new Error(`functions/${configMapName(d.name)}: Kubeless would name its code ConfigMap like the configuration ConfigMap of ${d.name}`);
    }
    const where = `functions/${d.name}`;
    const taken = new Set(Object.values(d.parameters).map((p) => p.env));
    const names = new Set<string>();
    for (const file of d.configFiles ?? []) {
      if (!CONFIG_KEY.test(file.name) || file.name === '.' || file.name === '..' || names.has(file.name)) {
        throw new Error(`${where}: the config file name ${JSON.stringify(file.name)} is not a unique ConfigMap key ([-._a-zA-Z0-9]+)`);
      }
      names.add(file.name);
      if (!ENV_NAME.test(file.env) || taken.has(file.env)) {
        throw new Error(`${where}: the variable ${JSON.stringify(file.env)} of ${file.name} is not an unused environment variable name`);
      }
      taken.add(file.env);
      const problems = file.check?.(file.content, { functions }) ?? [];
      if (problems.length > 0) throw new Error(`${where}: the default ${file.name}: ${problems.join('; ')}`);
    }
    if (d.namespaceEnv !== undefined && (!ENV_NAME.test(d.namespaceEnv) || taken.has(d.namespaceEnv))) {
      throw new Error(`${where}: the namespace variable ${JSON.stringify(d.namespaceEnv)} is not an unused environment variable name`);
    }
  }
}
