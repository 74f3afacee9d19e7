/**
 * The generated manifests apply on a real Kubernetes 1.20 API server, in every documented form, and a second apply
 * changes nothing (the generator is deterministic and kubectl sees no drift).
 */
import { strict as assert } from 'assert';
import { existsSync, mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { standaloneFor120 } from '../helpers/standalone-manifests';
import { kubectl, kubectlOk, sharedCluster, type Cluster } from './helpers/cluster';
import { DEPLOY_NAMESPACE, ensureDeployed, forgetDeployed, MANIFESTS } from './helpers/deploy';

/** kubectl's own lines of an apply (stdout); warnings such as the version skew go to stderr. */
function appliedLines(stdout: string): string[] {
  return stdout.split('\n').filter((line) => line.trim() !== '');
}

/** Applies twice: the first must succeed, the second must say `unchanged` on every line. */
async function applyTwice(cluster: Cluster, args: readonly string[]): Promise<string[]> {
  const first = await kubectl(cluster, ['apply', ...args]);
  assert.equal(first.code, 0, `kubectl apply ${args.join(' ')} failed:\n${first.stderr}${first.stdout}`);
  const second = await kubectl(cluster, ['apply', ...args]);
  assert.equal(second.code, 0, `the second kubectl apply ${args.join(' ')} failed:\n${second.stderr}${second.stdout}`);
  const lines = appliedLines(second.stdout);
  assert.ok(lines.length > 0, 'the second apply printed nothing');
  assert.deepEqual(
    lines.filter((line) => !/ unchanged$/.test(line)),
    [],
    `the second kubectl apply ${args.join(' ')} changed something`,
  );
  return appliedLines(first.stdout);
}

/** Removes what a form applied, namespace included, and waits until the namespace is really gone. */
async function remove(cluster: Cluster, args: readonly string[]): Promise<void> {
  await kubectlOk(cluster, ['delete', ...args, '--ignore-not-found', '--wait=true', '--timeout=60s']);
  const left = await kubectl(cluster, ['get', 'namespace', DEPLOY_NAMESPACE]);
  assert.notEqual(left.code, 0, `the namespace ${DEPLOY_NAMESPACE} is still there after kubectl delete ${args.join(' ')}`);
}

describe('e2e: the generated manifests on a real Kubernetes 1.20 API server', function () {
  let cluster: Cluster;
  // 1.20 has no policy/v1: its PodDisruptionBudgets as standalone.podDisruptionBudgetApiVersion: policy/v1beta1 writes them.
  const standalone = standaloneFor120(mkdtempSync(path.join(tmpdir(), 'falco-response-standalone-')));

  before(async function () {
    cluster = sharedCluster();
    // Start from nothing, whatever ran before: each form is applied to a cluster without our objects. The CRD goes in
    // first, as the README says: without it kubectl cannot even name the Functions it is asked to delete, and this
    // file must run alone as well as after the others.
    await kubectlOk(cluster, ['apply', '-f', path.join(MANIFESTS, 'crd')]);
    await remove(cluster, ['-k', MANIFESTS]);
    forgetDeployed(cluster);
  });

  after(async function () {
    // Leave the cluster as every other test expects it: the kustomize form applied.
    if (existsSync(standalone)) await kubectlOk(cluster, ['delete', '-k', standalone, '--ignore-not-found', '--wait=true', '--timeout=60s']);
    rmSync(path.dirname(standalone), { recursive: true, force: true });
    forgetDeployed(cluster);
    await ensureDeployed(cluster);
  });

  it('kubectl apply -f manifests/crd/ then kubectl apply -k manifests/ succeed, and a second apply is unchanged', async function () {
    await applyTwice(cluster, ['-f', path.join(MANIFESTS, 'crd')]);
    const created = await applyTwice(cluster, ['-k', MANIFESTS]);
    // The namespace comes from the manifests themselves, with everything else.
    assert.ok(created.includes(`namespace/${DEPLOY_NAMESPACE} created`), created.join('\n'));
    assert.ok(created.some((line) => /^function\.kubeless\.io\/\S+ created$/.test(line)), created.join('\n'));
  });

  it("the README's plain form, kubectl apply -f manifests/kubeless/, succeeds on a clean state, and a second apply is unchanged", async function () {
    await remove(cluster, ['-k', MANIFESTS]);
    const created = await applyTwice(cluster, ['-f', path.join(MANIFESTS, 'kubeless')]);
    assert.ok(created.includes(`namespace/${DEPLOY_NAMESPACE} created`), created.join('\n'));
    // kubectl apply -f on a folder holding a kustomization.yaml would fail: the plain folder must hold none.
    assert.equal(existsSync(path.join(MANIFESTS, 'kubeless', 'kustomization.yaml')), false);
  });

  if (existsSync(path.join(MANIFESTS, 'standalone'))) {
    it('kubectl apply -k manifests/standalone/ succeeds on a clean state, and a second apply is unchanged', async function () {
      await remove(cluster, ['-f', path.join(MANIFESTS, 'kubeless')]);
      const created = await applyTwice(cluster, ['-k', standalone]);
      assert.ok(created.includes(`namespace/${DEPLOY_NAMESPACE} created`), created.join('\n'));
    });
  }
});
