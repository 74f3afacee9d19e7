/**
 * The forwarder's notifier in the built bundle, in its own runtime (Node 14), with the actions acting on the real API
 * server: a real HTTP receiver on 127.0.0.1 gets exactly one summary per alert, saying what the actions did.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { ACTION_CASES, functionExists } from './helpers/cases';
import { createNamespace, createPod, deleteNamespaces, readPod, sharedCluster, uniqueName, waitFor, type Cluster } from './helpers/cluster';
import { DEPLOY_NAMESPACE, ensureDeployed, serviceAccountToken, writeTokenKubeconfig } from './helpers/deploy';
import { ServedFunction, stopAllFunctions } from './helpers/runtime';
import { terminalShellAlert, type FunctionAnswer } from './helpers/sidekick';
import { startStub, type HttpStub, type StubAnswer } from '../helpers/http-stub';

const FORWARDER = 'forwarder';
/** The receiver's path stands for a webhook's token: it must never reach the forwarder's log. */
const WEBHOOK_PATH = '/services/T0E2E/B0E2E/e2eSecretToken';

if (functionExists(FORWARDER) && ['label-pod', 'network-isolate', 'delete-pod'].every(functionExists)) {
  describe('e2e: the forwarder tells a webhook on 127.0.0.1 what the actions did on the real API server', function () {
    let cluster: Cluster;
    let namespace: string;
    let scratch: string;
    const actions = new Map<string, ServedFunction>();
    let receivers: HttpStub[] = [];

    before(async function () {
      cluster = sharedCluster();
      await ensureDeployed(cluster);
      namespace = await createNamespace(cluster, 'notifier');
      scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-e2e-notifier-'));
      for (const action of ACTION_CASES.filter((c) => functionExists(c.name))) {
        const kubeconfig = writeTokenKubeconfig(cluster, path.join(scratch, `${action.name}.json`), await serviceAccountToken(cluster, action.name));
        actions.set(action.name, await ServedFunction.start(action.name, { env: { KUBECONFIG: kubeconfig, ...action.env } }));
      }
    });

    afterEach(async () => {
      await Promise.all(receivers.map((r) => r.close()));
      receivers = [];
    });

    after(async function () {
      await stopAllFunctions();
      if (namespace !== undefined) await deleteNamespaces(cluster, [namespace]);
      if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
    });

    async function receiver(answer: () => StubAnswer): Promise<HttpStub> {
      const r = await startStub(answer);
      receivers.push(r);
      return r;
    }

    /** The forwarder, built and served as the generated Function runs it, its notifier pointed at `webhook`. */
    async function serveForwarder(table: unknown, notifier: Record<string, string>): Promise<ServedFunction> {
      const routesFile = path.join(scratch, `${uniqueName('routes')}.json`);
      writeFileSync(routesFile, JSON.stringify(table));
      const endpoints = Object.fromEntries([...actions].map(([name, fn]) => [name, fn.url]));
      return ServedFunction.start(FORWARDER, {
        env: { ROUTES_FILE: routesFile, ACTION_ENDPOINTS: JSON.stringify(endpoints), POD_NAMESPACE: DEPLOY_NAMESPACE, ...notifier },
      });
    }
    const webhookOf = (r: HttpStub) => `${r.url.replace(/\/$/, '')}${WEBHOOK_PATH}`;
    const summaries = (r: HttpStub) => r.received.map((request) => JSON.parse(request.body.toString('utf8')));

    it('POSTs one JSON summary per alert, each naming what label-pod and network-isolate did to its pod', async function () {
      // Given: two pods, and a route that labels and isolates
      const webhook = await receiver(() => ({ status: 200, body: 'ok' }));
      const pods = [uniqueName('notified-a'), uniqueName('notified-b')];
      await Promise.all(pods.map((pod) => createPod(cluster, namespace, pod)));
      const forwarder = await serveForwarder(
        { routes: [{ name: 'shell', rules: ['Terminal shell in container'], actions: ['label-pod', 'network-isolate'] }] },
        { NOTIFY_URL: webhookOf(webhook), NOTIFY_FORMAT: 'json' },
      );

      // When: an alert for each
      const answers: FunctionAnswer[] = [];
      for (const pod of pods) answers.push(await forwarder.post(terminalShellAlert(namespace, pod)));
      await waitFor('two summaries', () => Promise.resolve(webhook.received.length >= 2 ? true : undefined), 10000);
      await new Promise((resolve) => setTimeout(resolve, 500)); // time for a third, which must not come

      // Then: the answers as without a notifier, and exactly one summary per alert saying what each action answered
      for (const answer of answers) assert.equal(answer.body.status, 'done', answer.text);
      assert.equal(webhook.received.length, 2);
      for (const request of webhook.received) {
        assert.deepEqual([request.method, request.url, request.headers['content-type']], ['POST', WEBHOOK_PATH, 'application/json']);
      }
      const got = summaries(webhook);
      assert.deepEqual(
        got.map((s) => s.eventId),
        answers.map((a) => a.body.eventId),
      );
      pods.forEach((pod, i) => {
        assert.deepEqual(got[i], {
          source: 'falco-response',
          eventId: answers[i].body.eventId,
          rule: 'Terminal shell in container',
          priority: 'Critical',
          namespace,
          outcome: 'done',
          actions: answers[i].body.results.map((r: any) => ({
            action: r.action,
            status: 'done',
            target: { namespace, pod },
            message: r.message,
            dryRun: false,
          })),
        });
        assert.deepEqual(
          got[i].actions.map((a: any) => a.action),
          ['label-pod', 'network-isolate'],
        );
      });
      // and what they say happened, happened
      for (const pod of pods) {
        for (const name of ['label-pod', 'network-isolate']) await ACTION_CASES.find((c) => c.name === name)!.assertEffect(cluster, namespace, pod);
      }
      assert.match(forwarder.logs, /"message":"the notifier is on: a json summary of what the actions did goes to the webhook \(path not shown\)"/);
      assert.doesNotMatch(forwarder.logs, /e2eSecretToken/);
    });

    it('POSTs the Slack body after delete-pod deleted the pod', async function () {
      const webhook = await receiver(() => ({ status: 200, body: 'ok' }));
      const pod = uniqueName('notified-delete');
      await createPod(cluster, namespace, pod);
      const forwarder = await serveForwarder({ routes: [{ name: 'shell-delete', rules: ['Terminal shell in container'], actions: ['delete-pod'] }] }, { NOTIFY_URL: webhookOf(webhook) });

      const answer = await forwarder.post(terminalShellAlert(namespace, pod));
      await waitFor('the summary', () => Promise.resolve(webhook.received.length >= 1 ? true : undefined), 10000);
      await new Promise((resolve) => setTimeout(resolve, 300));

      assert.equal(answer.body.status, 'done', answer.text);
      assert.equal(await readPod(cluster, namespace, pod), undefined);
      assert.deepEqual(summaries(webhook), [
        {
          text: 'falco-response: 1 action(s) for an alert of priority Critical: delete-pod done',
          mrkdwn: false,
          blocks: [
            { type: 'section', text: { type: 'plain_text', text: `falco-response: alert "Terminal shell in container" (Critical), event-id ${answer.body.eventId}: 1 action(s)`, emoji: false } },
            {
              type: 'section',
              text: { type: 'plain_text', text: `• delete-pod done, namespace ${namespace} pod ${pod}: deleted the pod '${pod}' in the namespace '${namespace}' (grace period 1 s)`, emoji: false },
            },
          ],
        },
      ]);
    });

    it('answers Falcosidekick at once while the webhook never answers, then logs and counts the timeout', async function () {
      // Given: a webhook that holds every request
      const webhook = await receiver(() => ({ status: 200, body: 'ok', delayMs: 120000 }));
      const pod = uniqueName('notified-silent');
      await createPod(cluster, namespace, pod);
      const forwarder = await serveForwarder(
        { routes: [{ name: 'shell-label', rules: ['Terminal shell in container'], actions: ['label-pod'] }] },
        { NOTIFY_URL: webhookOf(webhook), NOTIFY_FORMAT: 'json' },
      );

      // When
      const answer = await forwarder.post(terminalShellAlert(namespace, pod));

      // Then: the answer came while the summary still waited (the notifier's timeout is 5 s), and the timeout is logged
      assert.equal(answer.body.status, 'done', answer.text);
      assert.ok(answer.elapsedMs < 4000, `answered after ${answer.elapsedMs} ms`);
      await waitFor('the timeout in the log', () => Promise.resolve(/no answer within 5000 ms/.test(forwarder.logs) ? true : undefined), 15000);
      const line = forwarder.logs.split('\n').find((l) => l.includes('the summary of an alert was not sent to the webhook'))!;
      const logged = JSON.parse(line.slice(line.indexOf('{')));
      assert.deepEqual(
        [logged.level, logged.eventId, logged.webhook, logged.error, logged.failed],
        ['error', answer.body.eventId, `${webhook.url}…`, 'no answer within 5000 ms', 1],
      );
      assert.equal(webhook.received.length, 1);
      assert.doesNotMatch(forwarder.logs, /e2eSecretToken/);
    });
  });
}
