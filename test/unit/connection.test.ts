import { strict as assert } from 'assert';
import { mkdtempSync, writeFileSync } from 'fs';
import nock from 'nock';
import { tmpdir } from 'os';
import * as path from 'path';
import * as http from 'http';
import type { AddressInfo } from 'net';
import { KubeClient } from '../../lib/kube/client';
import { KubeUnreachableError } from '../../lib/kube/errors';
import { loadConnection } from '../../lib/kube/connection';
import { apiPath } from '../../lib/kube/refs';
import { ConfigurationError } from '../../lib/params';

const OP = { verb: 'get', resource: 'pods', group: '', object: "the pod 'a' in the namespace 'b'" };

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'falco-response-conn-'));
}

describe('connecting to the API server', () => {
  it('in cluster: reads the ServiceAccount token again for every request, so a rotated token is used', async () => {
    // Given a folder shaped like the ServiceAccount mount
    const dir = tempDir();
    writeFileSync(path.join(dir, 'token'), 'first-token\n');
    writeFileSync(path.join(dir, 'ca.crt'), 'not really a CA');
    writeFileSync(path.join(dir, 'namespace'), 'falco-response');
    const connection = loadConnection({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', KUBE_SERVICEACCOUNT_DIR: dir });
    const api = nock('https://10.0.0.1:443')
      .get('/api/v1/namespaces/b/pods/a')
      .matchHeader('authorization', 'Bearer first-token')
      .reply(200, {})
      .get('/api/v1/namespaces/b/pods/a')
      .matchHeader('authorization', 'Bearer second-token')
      .reply(200, {});
    const kube = new KubeClient(connection);

    // When the token file is replaced between two calls
    await kube.request({ method: 'GET', path: apiPath`/api/v1/namespaces/b/pods/a`, op: OP }, Date.now() + 5000);
    writeFileSync(path.join(dir, 'token'), 'second-token\n');
    await kube.request({ method: 'GET', path: apiPath`/api/v1/namespaces/b/pods/a`, op: OP }, Date.now() + 5000);

    // Then both were sent with the token of their time, and the own namespace is known
    api.done();
    assert.equal(connection.ownNamespace, 'falco-response');
    assert.equal(connection.server.origin, 'https://10.0.0.1');
  });

  it('outside: reads a JSON kubeconfig with a token file relative to it', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'token'), 'kubeconfig-token');
    writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({
        'current-context': 'test',
        contexts: [{ name: 'test', context: { cluster: 'c', user: 'u' } }],
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': Buffer.from('ca').toString('base64') } }],
        users: [{ name: 'u', user: { tokenFile: 'token' } }],
      }),
    );
    const connection = loadConnection({ KUBECONFIG: path.join(dir, 'config.json') });
    assert.equal(connection.server.href, 'https://127.0.0.1:6443/');
    assert.equal(connection.ca?.toString(), 'ca');
    assert.equal(await connection.bearerToken(), 'kubeconfig-token');
  });

  it('says how to convert a YAML kubeconfig, and what is missing outside a cluster', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'config'), 'apiVersion: v1\nkind: Config\n');
    assert.throws(
      () => loadConnection({ KUBECONFIG: path.join(dir, 'config') }),
      (e: unknown) =>
        e instanceof ConfigurationError &&
        e.message ===
          `invalid configuration: KUBECONFIG: ${path.join(dir, 'config')} is not JSON; convert it with \`kubectl config view --raw --flatten -o json > kubeconfig.json\``,
    );
    assert.throws(
      () => loadConnection({}),
      (e: unknown) =>
        e instanceof ConfigurationError &&
        e.message === 'invalid configuration: no Kubernetes API to talk to: KUBERNETES_SERVICE_HOST is not set (not in a cluster) and neither is KUBECONFIG',
    );
  });

  it('sends patches with their own Content-Type (a real API server answers 415 otherwise)', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'token'), 't');
    writeFileSync(path.join(dir, 'ca.crt'), 'ca');
    const kube = new KubeClient(loadConnection({ KUBERNETES_SERVICE_HOST: 'kube.test', KUBE_SERVICEACCOUNT_DIR: dir }));
    const api = nock('https://kube.test:443')
      .patch('/api/v1/namespaces/b/pods/a', { metadata: { labels: { x: 'y' } } })
      .matchHeader('content-type', 'application/merge-patch+json')
      .reply(200, { ok: true });
    const answer = await kube.request(
      { method: 'PATCH', path: apiPath`/api/v1/namespaces/b/pods/a`, op: { ...OP, verb: 'patch' }, body: { metadata: { labels: { x: 'y' } } }, contentType: 'application/merge-patch+json' },
      Date.now() + 5000,
    );
    api.done();
    assert.deepEqual(answer, { ok: true });
  });

  it('retries a response cut off in the middle of its body, then reports it as unreachable', async () => {
    // Given a server on loopback that sends half an answer and hangs up, every time
    nock.enableNetConnect('127.0.0.1');
    let attempts = 0;
    const server = http.createServer((_req, res) => {
      attempts++;
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      res.write('{"kind":"Pod"');
      setTimeout(() => res.socket?.destroy(), 10);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const kube = new KubeClient(
      { server: new URL(`http://127.0.0.1:${port}`), insecureSkipTlsVerify: false, bearerToken: () => Promise.resolve(undefined), source: 'test' },
      { attempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
    );
    try {
      // When
      const failure = await kube.request({ method: 'GET', path: apiPath`/x`, op: OP }, Date.now() + 5000).then(
        () => assert.fail('no error'),
        (error: unknown) => error,
      );
      // Then: three attempts, well before the deadline, and a message that names the cause
      assert.ok(failure instanceof KubeUnreachableError, String(failure));
      assert.equal(attempts, 3);
      assert.match(failure.message, /^get the pod 'a' in the namespace 'b' failed: could not reach the API server at http:\/\/127\.0\.0\.1:\d+: .+ \(after 3 attempt\(s\)\)$/);
    } finally {
      server.close();
      nock.disableNetConnect();
    }
  });
});
