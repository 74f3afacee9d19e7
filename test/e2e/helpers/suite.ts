import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { createNamespace, deleteNamespaces, sharedCluster, uniqueName, type Cluster } from './cluster';
import { ensureDeployed, serviceAccountToken, writeTokenKubeconfig } from './deploy';
import { ServedFunction, stopAllFunctions } from './runtime';

/** What an e2e file of actions works in: filled in by its `before` hook, so read it inside tests and hooks only. */
export interface ActionSuite {
  /** The shared cluster, with the functions' ServiceAccounts and ClusterRoles deployed. */
  readonly cluster: Cluster;
  /** A namespace of this file's own, deleted after it. */
  readonly namespace: string;
  /** A folder of this file's own for kubeconfigs and mounts, removed after it. */
  readonly scratch: string;
  /** A kubeconfig for the function `name` as its own ServiceAccount of `target` (the shared cluster), through `server` when given. */
  kubeconfigFor(name: string, target?: Cluster, server?: string): Promise<string>;
  /** The function `name` in its own runtime (Node 14), as its own ServiceAccount, with `env` added. */
  serve(name: string, env?: Record<string, string>, options?: { timeoutSeconds?: number }): Promise<ServedFunction>;
}

/**
 * Registers the hooks every e2e file of actions repeats, in the `describe` that calls it: before, the shared cluster
 * deployed, a namespace `e2e-<label>-…` and a scratch folder; after, `first` (e.g. resume a paused API server), every
 * function stopped, `cleanup`, the namespace deleted and the folder removed.
 */
export function actionSuite(label: string, hooks: { first?: () => void; cleanup?: () => Promise<unknown> } = {}): ActionSuite {
  const state: { cluster?: Cluster; namespace?: string; scratch?: string } = {};
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the e2e suite '${label}' has no ${what} yet: read it inside a test or a hook`);
    return value;
  };
  const suite: ActionSuite = {
    get cluster() {
      return ready(state.cluster, 'cluster');
    },
    get namespace() {
      return ready(state.namespace, 'namespace');
    },
    get scratch() {
      return ready(state.scratch, 'scratch folder');
    },
    async kubeconfigFor(name, target = suite.cluster, server) {
      const token = await serviceAccountToken(target, name);
      return writeTokenKubeconfig(target, path.join(suite.scratch, `${name}-${uniqueName('kc')}.json`), token, server);
    },
    async serve(name, env = {}, options = {}) {
      return ServedFunction.start(name, { env: { KUBECONFIG: await suite.kubeconfigFor(name), ...env }, ...options });
    },
  };

  before(async function () {
    state.cluster = sharedCluster();
    await ensureDeployed(state.cluster);
    state.namespace = await createNamespace(state.cluster, label);
    state.scratch = mkdtempSync(path.join(tmpdir(), `falco-response-e2e-${label}-`));
  });

  after(async function () {
    hooks.first?.();
    await stopAllFunctions();
    await hooks.cleanup?.();
    if (state.cluster !== undefined && state.namespace !== undefined) await deleteNamespaces(state.cluster, [state.namespace]);
    if (state.scratch !== undefined) rmSync(state.scratch, { recursive: true, force: true });
  });

  return suite;
}
