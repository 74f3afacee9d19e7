/**
 * What `kubectl apply` puts into the cluster from manifests/, and the credentials of the generated ServiceAccounts:
 * each action is tested as its OWN ServiceAccount, with a TokenRequest token, never as admin.
 */
import { createHash } from 'crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { kubectlOk, type Cluster } from './cluster';
import { writeKubeconfig } from '../../helpers/fixtures';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const MANIFESTS = path.join(ROOT, 'manifests');
export const DIST_FUNCTIONS = path.join(ROOT, 'dist', 'functions');
export const RUNTIME_BUNDLE = path.join(ROOT, 'dist', 'runtime', 'kubeless-runtime.js');

/** The namespace the generated manifests create and deploy into (falco-response.yaml). */
export const DEPLOY_NAMESPACE = 'falco-response';

/** The folders of functions/: what the build discovers. */
export function functionFolders(): string[] {
  return readdirSync(path.join(ROOT, 'functions'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

/** Every object of a generated file of manifests/kubeless/. */
export function manifestObjects(file: string): any[] {
  return parseAllDocuments(readFileSync(path.join(MANIFESTS, 'kubeless', file), 'utf8'))
    .map((doc) => doc.toJS())
    .filter((object) => object !== null);
}

export interface Rule {
  readonly apiGroups: string[];
  readonly resources: string[];
  readonly verbs: string[];
}

/** The rules of the ClusterRole generated for a function (none for a function that declares no permission). */
export function clusterRoleRules(name: string): Rule[] {
  const role = manifestObjects(`${name}.yaml`).find((o) => o.kind === 'ClusterRole');
  return (role?.rules ?? []) as Rule[];
}

/** True when the function's generated RBAC grants `verb` on `group/resource`. */
export function ruleAllows(rules: readonly Rule[], group: string, resource: string, verb: string): boolean {
  return rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
}

/**
 * The bundle under test must be the one the applied Function ships: same bytes as the checksum in manifests/.
 * Otherwise the suite would prove something about code that is not deployed.
 */
export function assertBundleIsDeployedOne(name: string): string {
  const bundle = path.join(DIST_FUNCTIONS, `${name}.js`);
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run \`npm run build\``);
  const fn = manifestObjects(`${name}.yaml`).find((o) => o.kind === 'Function');
  if (fn === undefined) throw new Error(`manifests/kubeless/${name}.yaml holds no Function: run \`npm run build\``);
  const actual = `sha256:${createHash('sha256').update(readFileSync(bundle)).digest('hex')}`;
  if (actual !== fn.spec.checksum) {
    throw new Error(`dist/functions/${name}.js (${actual}) is not the bundle manifests/kubeless/${name}.yaml ships (${fn.spec.checksum}): run \`npm run build\``);
  }
  return bundle;
}

const deployed = new WeakMap<Cluster, Promise<void>>();

/** `kubectl apply -f manifests/crd/` then `kubectl apply -k manifests/`, once per cluster (idempotent anyway). */
export function ensureDeployed(cluster: Cluster): Promise<void> {
  let done = deployed.get(cluster);
  if (done === undefined) {
    done = (async () => {
      await kubectlOk(cluster, ['apply', '-f', path.join(MANIFESTS, 'crd')]);
      await kubectlOk(cluster, ['apply', '-k', MANIFESTS]);
    })();
    deployed.set(cluster, done);
    done.catch(() => deployed.delete(cluster));
  }
  return done;
}

/** For a test that removed what was applied: the next `ensureDeployed` applies again. */
export function forgetDeployed(cluster: Cluster): void {
  deployed.delete(cluster);
}

/**
 * A TokenRequest token of a generated ServiceAccount (`kubectl create token`). Bound to a Secret when asked: deleting
 * that Secret revokes the token at once, which is how the rotation test proves the old token is no longer used.
 */
export async function serviceAccountToken(cluster: Cluster, serviceAccount: string, boundSecret?: string): Promise<string> {
  const bound = boundSecret === undefined ? [] : ['--bound-object-kind', 'Secret', '--bound-object-name', boundSecret];
  const token = (await kubectlOk(cluster, ['create', 'token', serviceAccount, '-n', DEPLOY_NAMESPACE, ...bound])).trim();
  if (token.split('.').length !== 3) throw new Error(`kubectl create token ${serviceAccount} printed no JWT: ${token.slice(0, 40)}`);
  return token;
}

/** A kubeconfig in JSON form (the only form the bundles read) holding a bearer token for the cluster. */
export function writeTokenKubeconfig(cluster: Cluster, file: string, token: string, server: string = cluster.server): string {
  mkdirSync(path.dirname(file), { recursive: true });
  return writeKubeconfig(file, { server, token, caData: cluster.ca.toString('base64') });
}

/**
 * A folder shaped like the kubelet's ServiceAccount volume: `token`, `ca.crt` and `namespace` are links into a
 * `..data` link to a timestamped folder, and a rotation swaps `..data` atomically, as the kubelet does.
 */
export class ServiceAccountMount {
  private generation = 0;

  constructor(
    readonly dir: string,
    private readonly cluster: Cluster,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** Writes a new generation and points `..data` to it in one rename. */
  rotate(token: string): void {
    this.generation += 1;
    const data = `..gen-${this.generation}`;
    mkdirSync(path.join(this.dir, data));
    writeFileSync(path.join(this.dir, data, 'token'), token);
    writeFileSync(path.join(this.dir, data, 'ca.crt'), this.cluster.ca);
    writeFileSync(path.join(this.dir, data, 'namespace'), DEPLOY_NAMESPACE);
    symlinkSync(data, path.join(this.dir, '..data_tmp'));
    renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
    if (this.generation === 1) {
      for (const file of ['token', 'ca.crt', 'namespace']) symlinkSync(path.join('..data', file), path.join(this.dir, file));
    }
  }
}
