import { strict as assert } from 'assert';
import { readFileSync } from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import deletePod from '../../functions/delete-pod/action';
import forwarder from '../../functions/forwarder/action';
import type { FunctionDescriptor } from '../../lib/action';
import { parseRoutingTable } from '../../lib/forwarder/routes';
import type { Bundle } from '../../build/bundle';
import { CONFIG_FILE, loadConfig } from '../../build/config';
import { checkConfigFiles } from '../../build/config-files';
import { functionObjects, toYaml } from '../../build/manifests';
import { ROOT } from '../../build/main';

const config = loadConfig(path.join(ROOT, CONFIG_FILE));
const fakeBundle = (name: string): Bundle => ({ name, code: 'exports.handler = () => undefined;\n', bytes: 34, sha256: '0'.repeat(64) });

/** The objects as they land in manifests/: through YAML and back. */
function generated(descriptor: FunctionDescriptor): any[] {
  return parseAllDocuments(toYaml(functionObjects(descriptor, fakeBundle(descriptor.name), config, []))).map((d) => d.toJS());
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
});
