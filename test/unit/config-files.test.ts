import { strict as assert } from 'assert';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import nock from 'nock';
import { parseAllDocuments } from 'yaml';
import deletePod from '../../functions/delete-pod/action';
import forwarder, { DEFAULT_ROUTES_DESCRIPTION } from '../../functions/forwarder/router';
import type { FunctionDescriptor } from '../../lib/action';
import { AFTER_EDIT } from '../../lib/after-edit';
import { RECHECK_MS } from '../../lib/router/followed-file';
import { parseRoutingTable } from '../../lib/router/routes';
import { forwarderHandler } from '../../lib/router/runner';
import { memoryLogger } from '../../lib/log';
import { ConfigMapVolume } from '../helpers/configmap-volume';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import type { Bundle } from '../../build/bundle';
import { CONFIG_FILE, loadConfig } from '../../build/config';
import { checkConfigFiles } from '../../build/config-files';
import { kubelessObjects, toYaml } from '../../build/manifests';
import { functionModel } from '../../build/model';
import { ROOT } from '../../build/main';

const config = loadConfig(path.join(ROOT, CONFIG_FILE));
const fakeBundle = (name: string): Bundle => ({ name, code: 'exports.handler = () => undefined;\n', bytes: 34, sha256: '0'.repeat(64) });

/** The objects as they land in manifests/: through YAML and back. */
function generated(descriptor: FunctionDescriptor): any[] {
  return parseAllDocuments(toYaml(kubelessObjects(functionModel(descriptor, fakeBundle(descriptor.name), config, [])))).map((d) => d.toJS());
}

describe('generator: config files in a ConfigMap, mounted into the Function', () => {
  it("ships the forwarder's default routing table as the ConfigMap forwarder-config, mounted read-only, its path in ROUTES_FILE", () => {
    // When
    const objects = generated(forwarder);

    // Then
    const configMap = objects.find((o) => o.kind === 'ConfigMap');
    assert.deepEqual(configMap.metadata.name, 'forwarder-config');
    assert.deepEqual(configMap.metadata.namespace, 'falco-response');
    assert.deepEqual(Object.keys(configMap.data), ['routes.json']);
    const shipped = parseRoutingTable(configMap.data['routes.json']);
    const source = parseRoutingTable(readFileSync(path.join(ROOT, 'functions', 'forwarder', 'routes.default.json'), 'utf8'));
    assert.ok(shipped.ok && source.ok);
    assert.deepEqual(shipped.table, source.table);

    const fn = objects.find((o) => o.kind === 'Function');
    const template = fn.spec.deployment.spec.template;
    const container = template.spec.containers[0];
    assert.deepEqual(template.spec.volumes, [{ name: 'config', configMap: { name: 'forwarder-config' } }]);
    assert.deepEqual(container.volumeMounts, [{ name: 'config', mountPath: '/etc/falco-response', readOnly: true }]);
    assert.deepEqual(container.env.find((e: any) => e.name === 'ROUTES_FILE'), { name: 'ROUTES_FILE', value: '/etc/falco-response/routes.json' });
    assert.deepEqual(container.env.find((e: any) => e.name === 'POD_NAMESPACE'), {
      name: 'POD_NAMESPACE',
      valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
    assert.match(template.metadata.annotations['falco-response.io/config-sha256'], /^[0-9a-f]{64}$/);
  });

  it('gives the forwarder no Kubernetes permission at all, and says so on its Function', () => {
    const objects = generated(forwarder);
    assert.deepEqual(forwarder.permissions, []);
    assert.deepEqual(objects.map((o) => o.kind), ['ServiceAccount', 'ConfigMap', 'NetworkPolicy', 'Function']);
    assert.equal(objects[0].automountServiceAccountToken, false);
    const fn = objects[3];
    assert.equal(fn.spec.deployment.spec.template.spec.automountServiceAccountToken, false);
    assert.equal(
      fn.metadata.annotations['falco-response.io/permissions'],
      'none: this function makes no Kubernetes API call (no ClusterRole; no ServiceAccount token is mounted)',
    );
  });

  it('adds nothing to a function without config files', () => {
    const fn = generated(deletePod).find((o) => o.kind === 'Function');
    const template = fn.spec.deployment.spec.template;
    assert.equal(template.metadata, undefined);
    assert.equal(template.spec.volumes, undefined);
    assert.equal(template.spec.containers[0].volumeMounts, undefined);
    assert.ok(!generated(deletePod).some((o) => o.kind === 'ConfigMap'));
  });

  it('fails the build on a bad default table, naming the function, the file, the route and the field', () => {
    // Given
    const badTable = { routes: [{ name: 'shell', rules: ['Terminal shell in container'], minimumPriority: 'loud', actions: ['label-pod', 'kill-pod'] }] };
    const broken = { ...forwarder, configFiles: [{ ...forwarder.configFiles[0], content: JSON.stringify(badTable) }] };

    // Then
    assert.throws(
      () => checkConfigFiles([deletePod, broken]),
      (error: Error) =>
        error.message ===
        'functions/forwarder: the default routes.json: routes[0] ("shell").minimumPriority: expected one of Debug, Informational, Notice, Warning, Error, Critical, Alert, Emergency (any case), got "loud"',
    );
    const unknownAction = { ...forwarder, configFiles: [{ ...forwarder.configFiles[0], content: JSON.stringify({ routes: [{ ...badTable.routes[0], minimumPriority: 'Notice' }] }) }] };
    assert.throws(
      () => checkConfigFiles([deletePod, unknownAction]),
      (error: Error) =>
        error.message ===
        'functions/forwarder: the default routes.json: routes[0] ("shell").actions[0]: expected the name of a function in functions/ (delete-pod), got "label-pod"; ' +
          'routes[0] ("shell").actions[1]: expected the name of a function in functions/ (delete-pod), got "kill-pod"',
    );
  });

  it('refuses a config file variable that a parameter already uses, and a name a ConfigMap cannot hold', () => {
    const clash = { ...forwarder, configFiles: [{ ...forwarder.configFiles[0], env: 'CALL_TIMEOUT_SECONDS' }] };
    assert.throws(
      () => checkConfigFiles([clash]),
      (error: Error) => error.message === 'functions/forwarder: the variable "CALL_TIMEOUT_SECONDS" of routes.json is not an unused environment variable name',
    );
    const badName = { ...forwarder, configFiles: [{ ...forwarder.configFiles[0], name: 'routes/default.json' }] };
    assert.throws(
      () => checkConfigFiles([badName]),
      (error: Error) => error.message === 'functions/forwarder: the config file name "routes/default.json" is not a unique ConfigMap key ([-._a-zA-Z0-9]+)',
    );
  });

  describe('what an edit of the routing table does: one wording, and the forwarder does what it says', () => {
    const FOLLOWED =
      'read at start and followed: an edit of the ConfigMap takes effect without a restart, once the kubelet has updated the ' +
      'mounted file (about a minute) and the function has looked again (at most a second later); while the file is unusable, ' +
      'every call answers 500 with the reason';
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'falco-response-after-edit-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("says it in the ConfigMap's annotation and in the shipped table's description, never 'restart the pod'", () => {
      // When
      const configMap = generated(forwarder).find((o) => o.kind === 'ConfigMap');
      const shipped = JSON.parse(configMap.data['routes.json']);

      // Then
      assert.equal(AFTER_EDIT.followed, FOLLOWED);
      assert.equal(
        configMap.metadata.annotations['falco-response.io/description'],
        `configuration of forwarder: routes.json, the routing table: which actions run for which alerts (${FOLLOWED})`,
      );
      assert.equal(shipped.description, `Default routes of falco-response, in the ConfigMap forwarder-config; ${FOLLOWED}.`);
      assert.equal(shipped.description, DEFAULT_ROUTES_DESCRIPTION);
      // The wording has one source: routes.default.json holds none of its own that could say otherwise.
      const source = JSON.parse(readFileSync(path.join(ROOT, 'functions', 'forwarder', 'routes.default.json'), 'utf8'));
      assert.equal(source.description, undefined);
      assert.doesNotMatch(JSON.stringify([configMap, shipped]), /restart (it|the)/);
    });

    it('takes an edit of the mounted ConfigMap within a second, without a restart, and answers 500 with the reason while it is unusable', async () => {
      // Given: the shipped table, mounted as the kubelet mounts the ConfigMap, and a clock of the test's own
      const configMap = generated(forwarder).find((o) => o.kind === 'ConfigMap');
      const volume = ConfigMapVolume.create(path.join(dir, 'mount'), 'routes.json', configMap.data['routes.json']);
      let clock = 1_000_000;
      const handler = forwarderHandler(forwarder, { env: { ROUTES_FILE: volume.path, ACTIONS_NAMESPACE: 'falco-response' }, log: memoryLogger(), now: () => clock });
      const call = async () => {
        const { event, response } = kubelessEvent(alert('terminal-shell'));
        const answer = await handler(event, kubelessContext());
        return { status: response.statusCode, answer };
      };
      const actions = ['label-pod', 'network-isolate'].map((action) =>
        nock(`http://${action}.falco-response.svc.cluster.local:8080`).post('/').reply(200, { status: 'done', action, message: 'done' }),
      );
      const routed = await call();

      // When: the ConfigMap is edited to route another rule only, then broken
      volume.publish(JSON.stringify({ routes: [{ name: 'other', rules: ['Read sensitive file untrusted'], actions: ['label-pod'] }] }));
      clock += RECHECK_MS;
      const edited = await call();
      volume.publish('{"routes": [');
      clock += RECHECK_MS;
      const broken = await call();
      handler.close();

      // Then: "at most a second later", and the same handler (no restart) follows the file
      assert.equal(RECHECK_MS, 1000);
      actions.forEach((scope) => scope.done());
      assert.deepEqual([routed.status, routed.answer.status], [200, 'done']);
      assert.deepEqual([edited.status, edited.answer.status, edited.answer.code], [200, 'skipped', 'no-route']);
      assert.equal(broken.status, 500);
      assert.equal(broken.answer.status, 'failed');
      assert.match(broken.answer.error as string, /^invalid configuration: the routing table .*routes\.json: /);
    });
  });
});
