/**
 * The namespace selectors of the generated NetworkPolicies are configurable, because their default label,
 * kubernetes.io/metadata.name, is set by the API server only from Kubernetes 1.21 on (Kubeless runs on 1.17 to 1.21).
 * test/e2e/selectors.test.ts runs the same selectors against a real 1.20 API server.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { parseAllDocuments, stringify } from 'yaml';
import deletePod from '../../functions/delete-pod/action';
import networkIsolate from '../../functions/network-isolate/action';
import { quarantinePolicy } from '../../functions/network-isolate/policy';
import type { Bundle } from '../../build/bundle';
import { CONFIG_FILE, loadConfig, type DeploymentConfig } from '../../build/config';
import { kubelessObjects, toYaml } from '../../build/manifests';
import { functionModel } from '../../build/model';
import { ROOT } from '../../build/main';
import { namespaceName, objectName } from '../../lib/names';
import { ConfigurationError, readParams } from '../../lib/params';

const fakeBundle: Bundle = { name: 'delete-pod', code: 'exports.handler = () => undefined;\n', bytes: 34, sha256: '0'.repeat(64) };

/** falco-response.yaml with its callers section replaced, loaded as the build loads it. */
function configWith(callers: unknown): DeploymentConfig {
  const base = parseAllDocuments(readFileSync(path.join(ROOT, CONFIG_FILE), 'utf8'))[0].toJS();
  const dir = mkdtempSync(path.join(tmpdir(), 'falco-response-selectors-'));
  try {
    const file = path.join(dir, CONFIG_FILE);
    writeFileSync(file, stringify({ ...base, callers }));
    return loadConfig(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sidekickPeer(config: DeploymentConfig): unknown {
  const objects = parseAllDocuments(toYaml(kubelessObjects(functionModel(deletePod, fakeBundle, config, ['forwarder'])))).map((d) => d.toJS());
  return objects.find((o) => o.kind === 'NetworkPolicy').spec.ingress[0].from[0];
}

describe('namespace selectors: right from Kubernetes 1.21 by default, configurable for 1.17 to 1.20', () => {
  describe('the callers NetworkPolicy (callers.falcosidekick in falco-response.yaml)', () => {
    it("selects Falcosidekick's namespace by kubernetes.io/metadata.name=<namespace> when no namespaceLabels are configured", () => {
      // Given / When
      const peer = sidekickPeer(configWith({ falcosidekick: { namespace: 'monitoring', podLabels: { app: 'sidekick' } } }));

      // Then
      assert.deepEqual(peer, {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
        podSelector: { matchLabels: { app: 'sidekick' } },
      });
    });

    it('selects the namespace by the configured namespaceLabels instead, for clusters where the API server sets no name label', () => {
      // Given
      const config = configWith({ falcosidekick: { namespace: 'falco', namespaceLabels: { name: 'falco', team: 'security' }, podLabels: { app: 'sidekick' } } });

      // When
      const peer = sidekickPeer(config);

      // Then
      assert.deepEqual(peer, {
        namespaceSelector: { matchLabels: { name: 'falco', team: 'security' } },
        podSelector: { matchLabels: { app: 'sidekick' } },
      });
    });

    it('refuses empty namespaceLabels (a selector that would admit the pods of every namespace) and bad keys, naming the field', () => {
      assert.throws(
        () => configWith({ falcosidekick: { namespace: 'falco', namespaceLabels: {}, podLabels: { app: 'sidekick' } } }),
        (error: Error) => {
          assert.match(error.message, /callers\.falcosidekick\.namespaceLabels/);
          assert.match(error.message, /at least one namespace label \(none would select every namespace\)/);
          return true;
        },
      );
      assert.throws(
        () => configWith({ falcosidekick: { namespace: 'falco', namespaceLabels: { 'bad key': 'falco' }, podLabels: { app: 'sidekick' } } }),
        /callers\.falcosidekick\.namespaceLabels/,
      );
    });
  });

  describe("network-isolate's quarantine policy (NAMESPACE_NAME_LABEL)", () => {
    const ref = { namespace: namespaceName('shop')!, name: objectName('falco-response-quarantine')! };

    it('selects kube-system (ALLOW_DNS) and ALLOW_NAMESPACES by kubernetes.io/metadata.name by default', () => {
      // Given
      const params = readParams(networkIsolate.parameters, { ALLOW_DNS: 'true', ALLOW_NAMESPACES: 'forensics' });

      // When
      const policy = quarantinePolicy(ref, params);

      // Then
      assert.deepEqual(policy.spec.egress?.[0].to, [
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
      ]);
      assert.deepEqual(policy.spec.ingress?.[0].from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'forensics' } } }]);
    });

    it('selects them by the label NAMESPACE_NAME_LABEL names instead', () => {
      // Given
      const params = readParams(networkIsolate.parameters, { ALLOW_DNS: 'true', ALLOW_NAMESPACES: 'forensics, audit', NAMESPACE_NAME_LABEL: ' name ' });

      // When
      const policy = quarantinePolicy(ref, params);

      // Then
      const peers = [{ namespaceSelector: { matchLabels: { name: 'forensics' } } }, { namespaceSelector: { matchLabels: { name: 'audit' } } }];
      assert.deepEqual(policy.spec.egress, [
        {
          to: [{ namespaceSelector: { matchLabels: { name: 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
        { to: peers },
      ]);
      assert.deepEqual(policy.spec.ingress, [{ from: peers }]);
    });

    it('refuses a NAMESPACE_NAME_LABEL that is no label key, with what it takes', () => {
      assert.throws(
        () => readParams(networkIsolate.parameters, { NAMESPACE_NAME_LABEL: 'kubernetes.io/metadata name' }),
        (error: ConfigurationError) =>
          error instanceof ConfigurationError &&
          error.message ===
            "invalid configuration: NAMESPACE_NAME_LABEL: expected a label key (an optional DNS subdomain prefix and '/', then 1 to 63 letters, " +
              "digits, '-', '_' or '.') whose value is the namespace's name, got \"kubernetes.io/metadata name\"",
      );
    });
  });
});
