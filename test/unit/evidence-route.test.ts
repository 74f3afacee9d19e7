/**
 * The forwarder's sequential route of the README: capture-evidence, then delete-pod, for the same alert. Both actions
 * are served for real (their handlers behind HTTP on 127.0.0.1), on one in-memory cluster.
 */
import { strict as assert } from 'assert';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import nock from 'nock';
import captureEvidence from '../../functions/capture-evidence/action';
import deletePod from '../../functions/delete-pod/action';
import forwarder from '../../functions/forwarder/router';
import type { PodAction } from '../../lib/action';
import { memoryLogger } from '../../lib/log';
import { forwarderHandler, type ForwarderHandler } from '../../lib/router/runner';
import { podActionHandler } from '../../lib/runner';
import { alert, FIXTURES, kubelessContext, kubelessEvent, ResponseStub } from '../helpers/fixtures';
import { MemoryCluster } from '../helpers/memory-cluster';

const ROUTES = path.join(FIXTURES, 'routes', 'evidence-then-delete.json');
const POD = '/api/v1/namespaces/default/pods/kubecon';

/** An action's handler behind HTTP on 127.0.0.1, called as the Kubeless runtime calls it (shared/PROTOCOLS.md section 1). */
async function serveAction(action: PodAction, cluster: MemoryCluster): Promise<{ url: string; close: () => Promise<void> }> {
  const handler = podActionHandler(action, { env: { RULES: '*' }, kube: cluster.kube(), log: memoryLogger(), ownNamespace: 'falco-response' });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const response = new ResponseStub();
      const body = Buffer.concat(chunks);
      const event = { data: JSON.parse(body.toString('utf8')), 'event-id': req.headers['event-id'], 'event-type': 'falco', extensions: { request: { body }, response } };
      handler(event, kubelessContext()).then(
        (answer) => {
          res.writeHead(response.statusCode, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(answer));
        },
        (error: Error) => res.destroy(error),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

describe('the README route: capture-evidence, then delete-pod, in sequence through the forwarder (lib/router)', () => {
  let closers: (() => Promise<void>)[] = [];
  let handler: ForwarderHandler | undefined;

  before(() => nock.enableNetConnect('127.0.0.1'));
  after(() => nock.disableNetConnect());
  afterEach(async () => {
    handler?.close();
    await Promise.all(closers.map((close) => close()));
    closers = [];
  });

  async function forwarderFor(cluster: MemoryCluster): Promise<ForwarderHandler> {
    const evidence = await serveAction(captureEvidence, cluster);
    const del = await serveAction(deletePod, cluster);
    closers = [evidence.close, del.close];
    const log = memoryLogger();
    handler = forwarderHandler(forwarder, { env: { ROUTES_FILE: ROUTES, ACTION_ENDPOINTS: JSON.stringify({ 'capture-evidence': evidence.url, 'delete-pod': del.url }) }, log });
    return handler;
  }

  it('saves the evidence, then deletes the pod: the Secret holds the log of the pod that is gone', async () => {
    // Given
    const cluster = new MemoryCluster().addPod('default', 'kubecon').setLog('default', 'kubecon', 'app', 'the attacker typed: id\n');
    const forward = await forwarderFor(cluster);
    const response = new ResponseStub();

    // When
    const answer: any = await forward({ ...kubelessEvent(alert('terminal-shell')).event, extensions: { request: {}, response } }, kubelessContext());

    // Then: in order, the evidence written before the pod was deleted
    assert.equal(response.statusCode, 200, JSON.stringify(answer));
    assert.deepEqual(
      answer.results.map((r: any) => [r.action, r.status]),
      [
        ['capture-evidence', 'done'],
        ['delete-pod', 'done'],
      ],
    );
    const writes = cluster.take().filter((c) => c.method !== 'GET').map((c) => `${c.method} ${c.path}`);
    const saved = writes.indexOf('POST /api/v1/namespaces/falco-response/secrets');
    assert.ok(saved !== -1 && saved < writes.indexOf(`DELETE ${POD}`), writes.join('\n'));
    assert.equal(cluster.objects.has(POD), false);
    const [secret] = cluster.under('/api/v1/namespaces/falco-response/secrets/') as any[];
    assert.equal(Buffer.from(secret.data['app.log'], 'base64').toString('utf8'), 'the attacker typed: id\n');
  });

  it('keeps the pod when its evidence could not be saved: delete-pod is not invoked', async () => {
    // Given: the Secret's create refused
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    cluster.failNext(10, [403, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', message: 'forbidden', code: 403 }], {
      method: 'POST',
      path: '/api/v1/namespaces/falco-response/secrets',
    });
    const forward = await forwarderFor(cluster);

    // When
    const answer: any = await forward(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    // Then
    assert.deepEqual(
      answer.results.map((r: any) => [r.action, r.status]),
      [
        ['capture-evidence', 'failed'],
        ['delete-pod', 'not-invoked'],
      ],
    );
    assert.equal(cluster.objects.has(POD), true);
  });
});
