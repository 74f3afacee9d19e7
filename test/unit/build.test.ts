import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { bundle as bundleWith, BUNDLE_BUDGET_BYTES, type Bundle } from '../../build/bundle';
import { discoverFunctions, type DiscoveredFunction } from '../../build/discover';
import { buildAll, ROOT, staleDocs, staleManifests, type BuildResult } from '../../build/main';
import { sha256Of } from '../../build/manifests';

/** The kubectl limit on all annotations of an object; a client-side apply copies the object into one. */
const ANNOTATIONS_LIMIT = 262144;

function objectsOf(text: string): any[] {
  return parseAllDocuments(text).map((d) => d.toJS());
}

/**
 * Text that every bundle holding @kubernetes/client-node code contains: the name of the serializer class all its
 * API classes and models go through, and the type-name prefix that serializer parses, a string literal that even a
 * bundler renaming identifiers keeps. The package name itself is NOT one: a bundle holds no module paths.
 */
const CLIENT_NODE_MARKERS = ['ObjectSerializer', '{ [key: string]: '];

/** Writes `code` as `<dir>/<modName>.js` and loads it in a fresh Node as Kubeless does; what the handler is there. */
function kubelessHandlerType(dir: string, code: string, handler: string): string {
  const [modName, funcHandler] = handler.split('.');
  const file = path.join(dir, `${modName}.js`);
  writeFileSync(file, code);
  const load = `const m = require(${JSON.stringify(file)}); const h = typeof m === 'function' ? m : m[${JSON.stringify(funcHandler)}];
    process.stdout.write('\\n@@' + typeof h + (typeof h === 'function' ? '/' + h.length : ''));`;
  // The bundle may log its configuration problem at load (no cluster here): only the last line is the answer.
  const out = execFileSync(process.execPath, ['-e', load], { env: { PATH: process.env.PATH }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.slice(out.lastIndexOf('\n@@') + 3);
}

describe('build: bundles and manifests', function () {
  this.timeout(60000);
  let result: BuildResult;
  let functions: DiscoveredFunction[];

  before(async () => {
    functions = discoverFunctions(ROOT);
    result = await buildAll(ROOT);
  });

  it('finds every folder of functions/ and each declares its folder name, once', () => {
    const folders = readdirSync(path.join(ROOT, 'functions'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    assert.deepEqual(functions.map((f) => f.descriptor.name), folders);
    assert.equal(new Set(folders).size, folders.length);
  });

  it('takes each function by its one descriptor, action.ts or router.ts, and refuses a folder with none or both', () => {
    assert.ok(functions.some((f) => f.name === 'forwarder'), 'the forwarder is found by its router.ts');
    const scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-discover-'));
    try {
      const dir = path.join(scratch, 'functions', 'odd');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'index.ts'), 'export {};\n');
      const refusal = 'functions/odd/ must hold index.ts (the entry) and one descriptor: action.ts (an action) or router.ts (a router)';
      assert.throws(() => discoverFunctions(scratch), { message: refusal });
      writeFileSync(path.join(dir, 'action.ts'), 'export default {};\n');
      writeFileSync(path.join(dir, 'router.ts'), 'export default {};\n');
      assert.throws(() => discoverFunctions(scratch), { message: refusal });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('keeps each bundle within the budget', () => {
    for (const bundle of result.bundles) assert.ok(bundle.bytes <= BUNDLE_BUDGET_BYTES, `${bundle.name} is ${bundle.bytes} bytes`);
  });

  describe('free of @kubernetes/client-node (types only: its code is megabytes)', () => {
    let scratch: string;
    let naive: Bundle;

    before(async () => {
      // A function as one would naively write it with the full client, bundled exactly as the build bundles ours
      scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-naive-'));
      const entry = path.join(scratch, 'naive.ts');
      const client = path.join(ROOT, 'node_modules', '@kubernetes', 'client-node');
      writeFileSync(entry, `import { CoreV1Api, KubeConfig } from ${JSON.stringify(client)};\nexport const handler = () => new KubeConfig().makeApiClient(CoreV1Api);\n`);
      naive = await bundleWith('naive', entry, '/* naive */');
    });

    after(() => rmSync(scratch, { recursive: true, force: true }));

    it('the markers find client-node code in a bundle that holds it, where the package name does not', () => {
      assert.ok(naive.bytes > 1024 * 1024, `the naive bundle is only ${naive.bytes} bytes`);
      assert.equal(naive.code.includes('@kubernetes/client-node'), false, 'the package name would do as a marker after all');
      for (const marker of CLIENT_NODE_MARKERS) assert.ok(naive.code.includes(marker), `${JSON.stringify(marker)} is not in the naive bundle`);
    });

    it('finds none of the markers in any bundle of ours, the runtime included', () => {
      for (const bundle of [...result.bundles, result.runtime]) {
        assert.deepEqual(
          CLIENT_NODE_MARKERS.filter((marker) => bundle.code.includes(marker)),
          [],
          `${bundle.name} holds @kubernetes/client-node code`,
        );
      }
    });
  });

  it("exports, from each Function's code as Kubeless loads it, a function under the name its handler gives (PROTOCOLS section 1)", () => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-handler-'));
    try {
      for (const f of functions) {
        // Given: the code and handler of the generated Function, as the controller mounts them
        const fn = objectsOf(result.manifests.get(`kubeless/${f.name}.yaml`)!).find((o) => o.kind === 'Function');

        // When / Then: a function taking (event, context)
        assert.equal(kubelessHandlerType(path.join(scratch), fn.spec.function, fn.spec.handler), 'function/2', f.name);
        // The check itself tells a missing export apart
        assert.equal(kubelessHandlerType(scratch, fn.spec.function, `${f.name}.main`), 'undefined', f.name);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('manifests/ and docs/ match a fresh build (refresh with `npm run build`)', () => {
    assert.deepEqual(staleManifests(result.manifests), [], 'manifests/ is stale: run `npm run build` and commit manifests/');
    assert.deepEqual(staleDocs(result.docs), [], 'docs/ is stale: run `npm run build` and commit docs/');
  });

  it('builds byte-identical output twice (no timestamps, stable order)', async () => {
    const again = await buildAll(ROOT);
    assert.deepEqual([...again.manifests], [...result.manifests]);
    assert.deepEqual(again.bundles.map((b) => b.sha256), result.bundles.map((b) => b.sha256));
  });

  for (const file of ['kubeless/00-namespace.yaml']) {
    it(`lists ${file} and every function file in kustomization.yaml, and nothing that -f would choke on in kubeless/`, () => {
      const kustomization = objectsOf(result.manifests.get('kustomization.yaml')!)[0];
      const kubelessFiles = [...result.manifests.keys()].filter((f) => f.startsWith('kubeless/')).sort();
      assert.deepEqual(kustomization.resources, kubelessFiles);
      assert.ok(kubelessFiles.includes(file));
      assert.ok(!kubelessFiles.some((f) => f.endsWith('kustomization.yaml')));
    });
  }

  describe('each Function (shared/PROTOCOLS.md section 2)', () => {
    it('carries the labels Kubeless builds its selectors from, the handler, a string timeout and no deps', () => {
      for (const f of functions) {
        const fn = objectsOf(result.manifests.get(`kubeless/${f.name}.yaml`)!).find((o) => o.kind === 'Function');
        assert.equal(fn.apiVersion, 'kubeless.io/v1beta1');
        assert.equal(fn.metadata.labels['created-by'], 'kubeless');
        assert.equal(fn.metadata.labels.function, f.name);
        assert.equal(fn.spec.handler, `${f.name}.handler`);
        assert.equal(fn.spec.handler.split('.').length, 2, 'exactly one dot');
        assert.equal(typeof fn.spec.timeout, 'string');
        assert.equal(fn.spec.deps, '');
        assert.equal(fn.spec['function-content-type'], 'text');
        assert.ok(['nodejs12', 'nodejs14'].includes(fn.spec.runtime));
      }
    });

    it('has a checksum of exactly the bytes the API server stores (the YAML literal block, newline included)', () => {
      for (const f of functions) {
        const text = result.manifests.get(`kubeless/${f.name}.yaml`)!;
        const fn = objectsOf(text).find((o) => o.kind === 'Function');
        const bundle = result.bundles.find((b) => b.name === f.name)!;
        assert.equal(fn.spec.function, bundle.code, 'the YAML round trip changed the code');
        assert.equal(fn.spec.checksum, `sha256:${sha256Of(fn.spec.function)}`);
        assert.match(text, /\n {2}function: \|\n/, 'code not stored as a literal block');
      }
    });

    it('is applicable with a plain client-side kubectl apply (last-applied annotation under 256 KiB)', () => {
      for (const f of functions) {
        const fn = objectsOf(result.manifests.get(`kubeless/${f.name}.yaml`)!).find((o) => o.kind === 'Function');
        const annotation = Buffer.byteLength(JSON.stringify(fn), 'utf8');
        assert.ok(annotation < ANNOTATIONS_LIMIT * 0.5, `${f.name}: ${annotation} bytes, limit ${ANNOTATIONS_LIMIT}`);
      }
    });

    it('runs as its own ServiceAccount, non-root, read-only, without capabilities, with limits', () => {
      for (const f of functions) {
        const fn = objectsOf(result.manifests.get(`kubeless/${f.name}.yaml`)!).find((o) => o.kind === 'Function');
        const pod = fn.spec.deployment.spec.template.spec;
        assert.equal(pod.serviceAccountName, f.name);
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.equal(pod.securityContext.runAsUser, 1000);
        const container = pod.containers[0];
        assert.equal(container.securityContext.readOnlyRootFilesystem, true);
        assert.equal(container.securityContext.allowPrivilegeEscalation, false);
        assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
        assert.ok(container.resources.limits.memory);
      }
    });

    it('puts every declared parameter, with its default, in the environment', () => {
      for (const f of functions) {
        const fn = objectsOf(result.manifests.get(`kubeless/${f.name}.yaml`)!).find((o) => o.kind === 'Function');
        const env = fn.spec.deployment.spec.template.spec.containers[0].env.map((e: any) => e.name);
        for (const spec of Object.values(f.descriptor.parameters)) assert.ok(env.includes(spec.env), `${f.name} lacks ${spec.env}`);
      }
    });
  });

  /**
   * What each function may do in the cluster, written out here by hand and not derived from the descriptors: a
   * change of permissions must change this table, in review. The runner's Event recording adds events/create.
   */
  const EXPECTED_RULES: Record<string, readonly { apiGroups: string[]; resources: string[]; verbs: string[] }[]> = {
    'capture-evidence': [
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
    ],
    'cordon-node': [
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
    ],
    // Its RESOURCES default: get and delete on each, nothing more (test/unit/delete-object.test.ts: a configured value's own).
    'delete-object': [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['delete', 'get'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['delete', 'get'] },
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['delete', 'get'] },
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: ['delete', 'get'] },
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['delete', 'get'] },
    ],
    'delete-pod': [
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['delete', 'get'] },
    ],
    forwarder: [],
    'label-pod': [
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'patch'] },
    ],
    'network-isolate': [
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'patch'] },
      { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['create', 'get', 'update'] },
    ],
  };

  it('grants each function exactly the rules of the table above, bound to its ServiceAccount, and no ClusterRole nor token to one without', () => {
    assert.deepEqual(functions.map((f) => f.name), Object.keys(EXPECTED_RULES).sort(), 'a function without an expected rule table');
    for (const f of functions) {
      const objects = objectsOf(result.manifests.get(`kubeless/${f.name}.yaml`)!);
      const role = objects.find((o) => o.kind === 'ClusterRole');
      const binding = objects.find((o) => o.kind === 'ClusterRoleBinding');
      const account = objects.find((o) => o.kind === 'ServiceAccount');
      const pod = objects.find((o) => o.kind === 'Function').spec.deployment.spec.template.spec;
      const expected = EXPECTED_RULES[f.name];
      if (expected.length === 0) {
        assert.deepEqual([role, binding, account.automountServiceAccountToken, pod.automountServiceAccountToken], [undefined, undefined, false, false], f.name);
        continue;
      }
      assert.deepEqual(role.rules, expected, f.name);
      assert.equal(role.metadata.name, `falco-response-${f.name}`);
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: f.name, namespace: 'falco-response' }]);
      assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `falco-response-${f.name}` });
      assert.deepEqual([account.automountServiceAccountToken, pod.automountServiceAccountToken], [true, true], f.name);
    }
  });

  /** What a function may do in its own namespace only (its Role there), by hand as above; none for the others. */
  const EXPECTED_OWN_NAMESPACE_RULES: Record<string, readonly { apiGroups: string[]; resources: string[]; verbs: string[] }[]> = {
    'capture-evidence': [{ apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete', 'list'] }],
  };

  it('grants secrets in its own namespace only (a Role and RoleBinding there) to capture-evidence, in both targets, and to no other function', () => {
    for (const f of functions) {
      for (const file of [`kubeless/${f.name}.yaml`, `standalone/${f.name}.yaml`]) {
        const objects = objectsOf(result.manifests.get(file)!);
        const role = objects.find((o) => o.kind === 'Role');
        const binding = objects.find((o) => o.kind === 'RoleBinding');
        const expected = EXPECTED_OWN_NAMESPACE_RULES[f.name];
        if (expected === undefined) {
          assert.deepEqual([role, binding], [undefined, undefined], file);
          continue;
        }
        assert.deepEqual(role.rules, expected, file);
        assert.deepEqual(role.metadata.namespace, 'falco-response', file);
        assert.deepEqual(binding.metadata.namespace, 'falco-response', file);
        assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `falco-response-${f.name}` });
        assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: f.name, namespace: 'falco-response' }]);
        // No ClusterRole may grant secrets anywhere.
        assert.ok(!objects.find((o) => o.kind === 'ClusterRole').rules.some((r: any) => r.resources.includes('secrets')), file);
      }
    }
  });

  it('ships the functions.kubeless.io CRD as apiextensions v1 for Kubernetes 1.22+', () => {
    const crd = objectsOf(result.manifests.get('crd/functions.kubeless.io.yaml')!)[0];
    assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
    assert.equal(crd.metadata.name, 'functions.kubeless.io');
    assert.deepEqual(crd.spec.versions.map((v: any) => [v.name, v.served, v.storage]), [['v1beta1', true, true]]);
  });

  it('admits only Falcosidekick and the forwarder to each function (a NetworkPolicy per function), and wires the optional secret', () => {
    const callers = functions.filter((f) => f.descriptor.callsFunctions === true).map((f) => f.name);
    assert.deepEqual(callers, ['forwarder']);
    for (const f of functions) {
      const objects = objectsOf(result.manifests.get(`kubeless/${f.name}.yaml`)!);
      const policy = objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === `${f.name}-callers`);
      assert.deepEqual(policy.spec.podSelector, { matchLabels: { function: f.name } });
      assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
      const from = policy.spec.ingress[0].from;
      assert.deepEqual(from[0], {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'falco' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'falcosidekick' } },
      });
      assert.deepEqual(from.slice(1), f.name === 'forwarder' ? [] : [{ podSelector: { matchLabels: { function: 'forwarder' } } }]);
      assert.deepEqual(policy.spec.ingress[0].ports, [{ protocol: 'TCP', port: 8080 }]);

      const fn = objects.find((o) => o.kind === 'Function');
      const env = fn.spec.deployment.spec.template.spec.containers[0].env;
      const secretKey = (name: string) => env.find((e: any) => e.name === name)?.valueFrom.secretKeyRef;
      assert.deepEqual(secretKey('INBOUND_SECRET'), {
        name: 'falco-response-shared-secret',
        key: f.name === 'forwarder' ? 'forwarder-token' : 'token',
        optional: true,
      });
      assert.deepEqual(secretKey('OUTBOUND_SECRET'), f.name === 'forwarder' ? { name: 'falco-response-shared-secret', key: 'token', optional: true } : undefined);
    }
  });
});

