import { strict as assert } from 'assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { parse, parseAllDocuments } from 'yaml';
import type { Bundle } from '../../build/bundle';
import type { FunctionDescriptor } from '../../lib/action';
import { DEFAULT_STANDALONE_IMAGE, loadConfig, type DeploymentConfig } from '../../build/config';
import { discoverFunctions, type DiscoveredFunction } from '../../build/discover';
import { buildAll, ROOT, staleManifests, type BuildResult } from '../../build/main';
import { sha256Of, toYaml } from '../../build/manifests';
import { callersOf, functionModel } from '../../build/model';
import {
  annotationBytesAfterApply,
  checkStandaloneSizes,
  CODE_SHA_ANNOTATION,
  configMapDataBytes,
  goJson,
  RUNTIME_FILE,
  STANDALONE_BUDGET,
  standaloneObjects,
} from '../../build/standalone';
import { withBetaBudgets } from '../helpers/standalone-manifests';

function objectsOf(text: string): any[] {
  return parseAllDocuments(text).map((d) => d.toJS());
}

const byKind = (objects: any[], kind: string, name?: string) => objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

function fakeBundle(name: string, code: string): Bundle {
  return { name, code, bytes: Buffer.byteLength(code), sha256: sha256Of(code) };
}

describe('build: the standalone target (manifests/standalone/)', function () {
  this.timeout(60000);
  let result: BuildResult;
  let functions: DiscoveredFunction[];
  let config: DeploymentConfig;

  before(async () => {
    functions = discoverFunctions(ROOT);
    config = loadConfig(path.join(ROOT, 'falco-response.yaml'));
    result = await buildAll(ROOT);
  });

  const standalone = (name: string) => objectsOf(result.manifests.get(`standalone/${name}.yaml`)!);
  /** One function's standalone objects as the build makes them, with the configuration `c`. */
  const standaloneOf = (descriptor: FunctionDescriptor, bundle: Bundle, c: DeploymentConfig = config) =>
    standaloneObjects(functionModel(descriptor, bundle, c, callersOf(functions.map((x) => x.descriptor))), result.runtime, c);
  const kubeless = (name: string) => objectsOf(result.manifests.get(`kubeless/${name}.yaml`)!);

  it('writes one file per function, the namespace and a kustomization listing exactly those', () => {
    const files = [...result.manifests.keys()].filter((f) => f.startsWith('standalone/')).sort();
    const expected = ['00-namespace.yaml', ...functions.map((f) => `${f.name}.yaml`)].sort();
    assert.deepEqual(files, [...expected.map((f) => `standalone/${f}`), 'standalone/kustomization.yaml'].sort());
    const kustomization = objectsOf(result.manifests.get('standalone/kustomization.yaml')!)[0];
    assert.equal(kustomization.kind, 'Kustomization');
    assert.deepEqual(kustomization.resources, expected);
    assert.deepEqual(standalone('00-namespace'), objectsOf(result.manifests.get('kubeless/00-namespace.yaml')!));
  });

  it('stays out of manifests/kustomization.yaml, which deploys the Kubeless target', () => {
    const kustomization = objectsOf(result.manifests.get('kustomization.yaml')!)[0];
    assert.ok(kustomization.resources.every((r: string) => r.startsWith('kubeless/')), kustomization.resources.join(', '));
  });

  it('is covered by the freshness check: a changed, missing or left-over standalone file is stale', () => {
    // Given a manifests/ folder exactly as the build writes it
    const dir = mkdtempSync(path.join(tmpdir(), 'falco-response-manifests-'));
    try {
      for (const [file, text] of result.manifests) {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), text);
      }
      assert.deepEqual(staleManifests(result.manifests, dir), []);
      const [first] = functions;

      // When one standalone file changes, another goes missing and an old one is left over
      writeFileSync(path.join(dir, `standalone/${first.name}.yaml`), `${readFileSync(path.join(dir, `standalone/${first.name}.yaml`), 'utf8')}# edited\n`);
      rmSync(path.join(dir, 'standalone/kustomization.yaml'));
      writeFileSync(path.join(dir, 'standalone/retired.yaml'), '');

      // Then each is reported
      assert.deepEqual(staleManifests(result.manifests, dir), [`standalone/${first.name}.yaml`, 'standalone/kustomization.yaml', 'standalone/retired.yaml']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ships the same ServiceAccount, RBAC and config ConfigMaps as the Kubeless target, unchanged', () => {
    for (const f of functions) {
      const shared = kubeless(f.name).filter((o) => o.kind !== 'Function');
      assert.deepEqual(standalone(f.name).slice(0, shared.length), shared, f.name);
    }
  });

  it('holds the bundle and the runtime in a ConfigMap, byte for byte, as literal blocks', () => {
    for (const f of functions) {
      const configMap = byKind(standalone(f.name), 'ConfigMap', f.name);
      const bundle = result.bundles.find((b) => b.name === f.name)!;
      assert.deepEqual(Object.keys(configMap.data), [`${f.name}.js`, RUNTIME_FILE]);
      assert.equal(configMap.data[`${f.name}.js`], bundle.code);
      assert.equal(configMap.data[RUNTIME_FILE], result.runtime.code);
      assert.match(result.manifests.get(`standalone/${f.name}.yaml`)!, new RegExp(`\\n {2}${f.name}\\.js: \\|`));
    }
  });

  it('runs the configured stock Node image with the runtime from the ConfigMap, hardened like the Function', () => {
    assert.equal(config.standalone?.image ?? DEFAULT_STANDALONE_IMAGE, 'node:24.22.3-alpine');
    for (const f of functions) {
      const deployment = byKind(standalone(f.name), 'Deployment');
      const functionPod = byKind(kubeless(f.name), 'Function').spec.deployment.spec.template.spec;
      const pod = deployment.spec.template.spec;
      const [container] = pod.containers;
      assert.equal(container.image, 'node:24.22.3-alpine');
      assert.deepEqual(container.command, ['node', `/kubeless/${RUNTIME_FILE}`]);
      assert.equal(pod.serviceAccountName, f.name);
      assert.equal(pod.automountServiceAccountToken, functionPod.automountServiceAccountToken);
      assert.deepEqual(pod.securityContext, {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        fsGroup: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      assert.deepEqual(container.securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        privileged: false,
        capabilities: { drop: ['ALL'] },
      });
      assert.deepEqual(container.resources, config.resources);
      for (const probe of [container.livenessProbe, container.readinessProbe]) assert.deepEqual(probe.httpGet, { path: '/healthz', port: 8080 });
      assert.deepEqual(pod.volumes.at(-1), { name: 'kubeless', configMap: { name: f.name } });
      assert.deepEqual(container.volumeMounts.at(-1), { name: 'kubeless', mountPath: '/kubeless', readOnly: true });
      // Whatever the Function's pod mounts (config files), the standalone pod mounts too.
      for (const volume of functionPod.volumes ?? []) assert.ok(pod.volumes.some((v: any) => v.name === volume.name), `${f.name}: no ${volume.name}`);
      for (const mount of functionPod.containers[0].volumeMounts ?? []) assert.ok(container.volumeMounts.some((m: any) => m.mountPath === mount.mountPath));
    }
  });

  it("gives the container the Function's environment, then the variables Kubeless's controller adds (PROTOCOLS section 1)", () => {
    for (const f of functions) {
      const container = byKind(standalone(f.name), 'Deployment').spec.template.spec.containers[0];
      const functionEnv = byKind(kubeless(f.name), 'Function').spec.deployment.spec.template.spec.containers[0].env;
      // An empty value is written as the API server stores it, without `value`, so that a re-apply changes nothing.
      assert.deepEqual(container.env, [
        ...functionEnv.map((e: any) => (e.value === '' ? { name: e.name } : e)),
        { name: 'FUNC_HANDLER', value: 'handler' },
        { name: 'MOD_NAME', value: f.name },
        { name: 'FUNC_TIMEOUT', value: String(config.timeoutSeconds) },
        { name: 'FUNC_RUNTIME', value: 'nodejs24' },
        { name: 'FUNC_MEMORY_LIMIT', value: config.resources.limits.memory },
        { name: 'FUNC_PORT', value: '8080' },
        { name: 'KUBELESS_INSTALL_VOLUME', value: '/kubeless' },
        { name: 'NODE_PATH', value: '/kubeless/node_modules' },
        { name: 'SHUTDOWN_DELAY_SECONDS', value: '5' },
      ]);
    }
  });

  it('answers Falcosidekick through a Service <function>:8080 (http-function-port) selecting the pods by function label', () => {
    for (const f of functions) {
      const objects = standalone(f.name);
      const service = byKind(objects, 'Service');
      const deployment = byKind(objects, 'Deployment');
      assert.equal(service.metadata.name, f.name);
      assert.equal(service.metadata.namespace, config.namespace);
      assert.deepEqual(service.spec.ports, [{ name: 'http-function-port', protocol: 'TCP', port: 8080, targetPort: 8080 }]);
      assert.deepEqual(service.spec.selector, { function: f.name, 'app.kubernetes.io/part-of': 'falco-response' });
      assert.deepEqual(deployment.spec.selector.matchLabels, service.spec.selector);
      const podLabels = deployment.spec.template.metadata.labels;
      for (const [key, value] of Object.entries(service.spec.selector)) assert.equal(podLabels[key], value);
      assert.equal(podLabels['created-by'], undefined, "Kubeless's controller claims objects labelled created-by: kubeless");
    }
  });

  it("restarts the pods when the code changes: the template carries the ConfigMap content's sha256", () => {
    const [f] = functions;
    const deployment = byKind(standalone(f.name), 'Deployment');
    const configMap = byKind(standalone(f.name), 'ConfigMap', f.name);
    assert.equal(deployment.spec.template.metadata.annotations[CODE_SHA_ANNOTATION], sha256Of(JSON.stringify(configMap.data)));
    const functionAnnotations = byKind(kubeless(f.name), 'Function').spec.deployment.spec.template.metadata?.annotations ?? {};
    for (const [key, value] of Object.entries(functionAnnotations)) assert.equal(deployment.spec.template.metadata.annotations[key], value);

    // Given the same function with one byte more of code, When its objects are generated again
    const bundle = result.bundles.find((b) => b.name === f.name)!;
    const changed = standaloneOf(f.descriptor, fakeBundle(f.name, `${bundle.code};`)) as any[];

    // Then only the ConfigMap and the pod template's hash differ
    const rolled = byKind(changed, 'Deployment');
    assert.notEqual(rolled.spec.template.metadata.annotations[CODE_SHA_ANNOTATION], deployment.spec.template.metadata.annotations[CODE_SHA_ANNOTATION]);
    rolled.spec.template.metadata.annotations[CODE_SHA_ANNOTATION] = deployment.spec.template.metadata.annotations[CODE_SHA_ANNOTATION];
    assert.deepEqual(rolled, deployment);
  });

  it('reports each ConfigMap under its budgets, measured as the API server and kubectl count', () => {
    for (const f of functions) {
      const configMap = byKind(standalone(f.name), 'ConfigMap', f.name);
      const sizes = result.standaloneSizes.get(f.name)!;
      assert.equal(sizes.configMapBytes, configMapDataBytes(configMap));
      assert.equal(sizes.annotationBytes, annotationBytesAfterApply(configMap));
      assert.ok(sizes.configMapBytes <= STANDALONE_BUDGET.configMapBytes);
      assert.ok(sizes.annotationBytes <= STANDALONE_BUDGET.annotationBytes);
      // The code alone, and kubectl's JSON copy, which escapes <, > and & as Go does.
      assert.ok(sizes.configMapBytes > result.runtime.bytes + result.bundles.find((b) => b.name === f.name)!.bytes);
    }
  });

  it('counts annotations the way kubectl stores them: Go-escaped JSON, key included, plus a newline', () => {
    assert.equal(goJson({ a: '<b> & c\u2028' }), '{"a":"\\u003cb\\u003e \\u0026 c\\u2028"}');
    const object = { metadata: { name: 'x', annotations: { k: 'v' } }, data: { 'f.js': 'a<b' } };
    const copy = '{"metadata":{"name":"x","annotations":{"k":"v"}},"data":{"f.js":"a\\u003cb"}}';
    assert.equal(annotationBytesAfterApply(object), 2 + 'kubectl.kubernetes.io/last-applied-configuration'.length + copy.length + 1);
    assert.equal(configMapDataBytes({ data: { 'f.js': 'é' }, binaryData: { b: Buffer.from('xyz').toString('base64') } }), 4 + 2 + 1 + 3);
  });

  it('fails the build past the budget, naming the file, the object and the figures', () => {
    const [f] = functions;
    const huge = fakeBundle(f.name, 'x'.repeat(200 * 1024));
    const objects = standaloneOf(f.descriptor, huge);
    const configMap = (objects as any[]).find((o) => o.kind === 'ConfigMap' && o.metadata.name === f.name);
    assert.throws(
      () => checkStandaloneSizes(f.name, objects),
      new Error(
        `manifests/standalone/${f.name}.yaml: the ConfigMap '${f.name}' would carry ${annotationBytesAfterApply(configMap)} bytes of annotations ` +
          'after a client-side apply (budget 196608, limit 262144)',
      ),
    );
  });

  it('refuses a function named after the runtime file', () => {
    const [f] = functions;
    const renamed = { ...f.descriptor, name: 'kubeless-runtime' };
    assert.throws(
      () => standaloneOf(renamed, fakeBundle('kubeless-runtime', '')),
      new Error("functions/kubeless-runtime: the name is taken by the runtime's file in the standalone target's ConfigMap; rename the folder"),
    );
  });

  it('defaults to an exactly pinned Node LTS image, not Node 14 (end of life since April 2023)', () => {
    assert.equal(DEFAULT_STANDALONE_IMAGE, 'node:24.22.3-alpine');
  });

  it('runs two replicas per function by default, one evictable at a time under a policy/v1 PodDisruptionBudget', () => {
    for (const f of functions) {
      const objects = standalone(f.name);
      const deployment = byKind(objects, 'Deployment');
      const budget = byKind(objects, 'PodDisruptionBudget');
      assert.equal(deployment.spec.replicas, 2);
      assert.deepEqual(budget, {
        apiVersion: 'policy/v1',
        kind: 'PodDisruptionBudget',
        metadata: { name: f.name, namespace: config.namespace, labels: deployment.metadata.labels },
        spec: { maxUnavailable: 1, selector: deployment.spec.selector },
      });
    }
  });

  it('lets a stopping pod drain: readiness every 5 s, SHUTDOWN_DELAY_SECONDS 5, a grace period past delay and FUNC_TIMEOUT', () => {
    for (const f of functions) {
      const pod = byKind(standalone(f.name), 'Deployment').spec.template.spec;
      const [container] = pod.containers;
      assert.deepEqual(container.readinessProbe, { httpGet: { path: '/healthz', port: 8080 }, initialDelaySeconds: 1, periodSeconds: 5 });
      assert.deepEqual(container.env.find((e: any) => e.name === 'SHUTDOWN_DELAY_SECONDS'), { name: 'SHUTDOWN_DELAY_SECONDS', value: '5' });
      assert.equal(pod.terminationGracePeriodSeconds, 5 + config.timeoutSeconds + 5);
    }
  });

  it('prefers spreading the replicas over nodes', () => {
    for (const f of functions) {
      const deployment = byKind(standalone(f.name), 'Deployment');
      assert.deepEqual(deployment.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution, [
        { weight: 100, podAffinityTerm: { labelSelector: deployment.spec.selector, topologyKey: 'kubernetes.io/hostname' } },
      ]);
    }
  });

  describe('standalone.replicas and standalone.podDisruptionBudgetApiVersion in falco-response.yaml', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'falco-response-config-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    function withStandalone(standalone: Record<string, unknown>): DeploymentConfig {
      const base = parse(readFileSync(path.join(ROOT, 'falco-response.yaml'), 'utf8'));
      const file = path.join(dir, 'falco-response.yaml');
      writeFileSync(file, JSON.stringify({ ...base, standalone: { ...base.standalone, ...standalone } }));
      return loadConfig(file);
    }
    const objectsWith = (c: DeploymentConfig) =>
      standaloneOf(functions[0].descriptor, result.bundles[0], c) as any[];

    it('sets the replicas, 2 when unset', () => {
      assert.equal(byKind(objectsWith(withStandalone({ replicas: 3 })), 'Deployment').spec.replicas, 3);
      assert.equal(byKind(objectsWith(withStandalone({ replicas: undefined })), 'Deployment').spec.replicas, 2);
    });

    it('the Kubernetes 1.20 copy the e2e suites apply is what the build writes with policy/v1beta1', () => {
      const beta = withStandalone({ podDisruptionBudgetApiVersion: 'policy/v1beta1' });
      for (const f of functions) {
        const committed = result.manifests.get(`standalone/${f.name}.yaml`)!;
        const bundle = result.bundles.find((b) => b.name === f.name)!;
        const expected = toYaml(standaloneOf(f.descriptor, bundle, beta));
        assert.equal(withBetaBudgets(committed), expected, f.name);
        assert.notEqual(committed, expected);
      }
    });

    it('writes the budget as policy/v1beta1 for Kubernetes 1.20 and older, the same spec otherwise', () => {
      const v1 = byKind(objectsWith(withStandalone({})), 'PodDisruptionBudget');
      const beta = byKind(objectsWith(withStandalone({ podDisruptionBudgetApiVersion: 'policy/v1beta1' })), 'PodDisruptionBudget');
      assert.deepEqual(beta, { ...v1, apiVersion: 'policy/v1beta1' });
    });

    for (const replicas of [0, 1.5, '2']) {
      it(`refuses replicas ${JSON.stringify(replicas)}, naming the key and the value`, () => {
        assert.throws(() => withStandalone({ replicas }), {
          name: 'InvalidInputError',
          message: `${path.join(dir, 'falco-response.yaml')}: standalone.replicas: expected a whole number of replicas from 1 to 100, got ${JSON.stringify(replicas)}`,
        });
      });
    }

    it('refuses another budget API version, naming the key and the value', () => {
      assert.throws(() => withStandalone({ podDisruptionBudgetApiVersion: 'policy/v2' }), {
        name: 'InvalidInputError',
        message:
          `${path.join(dir, 'falco-response.yaml')}: standalone.podDisruptionBudgetApiVersion: expected policy/v1 (Kubernetes 1.21 and later) ` +
          'or policy/v1beta1 (1.20 and older), got "policy/v2"',
      });
    });
  });

  describe('standalone.image in falco-response.yaml', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'falco-response-config-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    function withImage(image: string): DeploymentConfig {
      const base = parse(readFileSync(path.join(ROOT, 'falco-response.yaml'), 'utf8'));
      const file = path.join(dir, 'falco-response.yaml');
      writeFileSync(file, JSON.stringify({ ...base, standalone: { image } }));
      return loadConfig(file);
    }

    for (const image of ['node:14.21.3-alpine', 'node:12.22.12', 'node:20.11.1-bookworm-slim', `library/node:14.21.3-alpine@sha256:${'a'.repeat(64)}`]) {
      it(`accepts ${image}`, () => {
        assert.equal(withImage(image).standalone?.image, image);
      });
    }

    for (const image of ['node:14', 'node:lts-alpine', 'node:10.24.1-alpine', 'bitnami/node:14.21.3', 'node:14.21.3-alpine@sha256:short']) {
      it(`refuses ${image}, naming the key and the value`, () => {
        assert.throws(() => withImage(image), {
          name: 'InvalidInputError',
          message:
            `${path.join(dir, 'falco-response.yaml')}: standalone.image: expected the official node image pinned to an exact version ` +
            `of Node 12 or later, such as node:14.21.3-alpine, got ${JSON.stringify(image)}`,
        });
      });
    }

    it('sets FUNC_RUNTIME to the Node the image runs', () => {
      const [f] = functions;
      const objects = standaloneOf(f.descriptor, result.bundles[0], withImage('node:20.11.1-alpine')) as any[];
      const container = byKind(objects, 'Deployment').spec.template.spec.containers[0];
      assert.equal(container.image, 'node:20.11.1-alpine');
      assert.deepEqual(container.env.find((e: any) => e.name === 'FUNC_RUNTIME'), { name: 'FUNC_RUNTIME', value: 'nodejs20' });
    });
  });
});
