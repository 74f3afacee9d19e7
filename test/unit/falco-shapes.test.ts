import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import forwarder from '../../functions/forwarder/router';
import { forwarderHandler } from '../../lib/router/runner';
import { memoryLogger } from '../../lib/log';
import { handlerFor, testKube } from '../helpers/fake-cluster';
import { alertFixtureNames, interceptAction, probeTable, servedCalls, SHAPES, type Shape } from '../helpers/falco-shapes';
import { alert, alertText, kubelessContext, kubelessEvent, nodeObject, scheduledPodObject } from '../helpers/fixtures';
import { MemoryCluster } from '../helpers/memory-cluster';
import { handlerOfAction, nodeActions, podActions } from '../helpers/pod-actions';

/**
 * Alerts as Falco writes them, from before the container plugin to 0.41 and later (shared/PROTOCOLS.md section 4;
 * test/fixtures/alerts/README.md names the source of each): every pod action and the router must read each one.
 * Every rule, every priority and every namespace but kube-system are let through, so that what is checked is the
 * reading of the alert, not the guards.
 */
const LET_THROUGH = { RULES: '*', MINIMUM_PRIORITY: 'Debug', PROTECTED_NAMESPACES: 'kube-system' };

const podPath = (pod: { namespace: string; name: string }) => `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`;

describe('alerts as Falco writes them: the fixtures', () => {
  it('describes every alert fixture on disk, and only those', () => {
    assert.deepEqual(SHAPES.map((s) => s.fixture).sort(), alertFixtureNames());
  });

  it('holds each fixture as one line of compact JSON, as Falco and Falcosidekick send it', () => {
    for (const { fixture } of SHAPES) {
      const text = alertText(fixture);
      assert.ok(text.endsWith('}\n') && !text.slice(0, -1).includes('\n'), `${fixture}: not one line`);
      assert.equal(typeof alert(fixture).output_fields, 'object', fixture);
    }
  });
});

describe('alerts as Falco writes them, through every pod action', () => {
  for (const action of podActions()) {
    describe(action.name, () => {
      for (const shape of SHAPES) {
        it(`${shape.fixture}: ${describeTarget(shape)}`, async () => {
          // Given: a cluster holding the pod the alert names (if it names one)
          const cluster = new MemoryCluster();
          if ('pod' in shape.target) cluster.addPod(shape.target.pod.namespace, shape.target.pod.name);
          const calls = servedCalls(cluster);
          const { handler, log } = handlerFor(action, LET_THROUGH);
          const { event, response } = kubelessEvent(alert(shape.fixture));

          // When
          const answer = await handler(event, kubelessContext());

          // Then
          const warnings = log.lines.filter((l) => l.level !== 'info');
          assert.deepEqual(warnings, []);
          if ('testEvent' in shape.target) {
            assert.deepEqual(answer, { status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: nothing to do" });
            assert.deepEqual(calls, []);
          } else if ('noPod' in shape.target) {
            assert.deepEqual(answer, { status: 'skipped', code: 'no-pod', reason: shape.target.noPod });
            assert.equal(response.statusCode, 200);
            assert.deepEqual(calls, [], 'an alert that names no pod makes no call to the API server');
          } else {
            const pod = shape.target.pod;
            assert.equal(response.statusCode, 200, JSON.stringify(answer));
            assert.equal(answer.status, 'done', JSON.stringify(answer));
            assert.equal(answer.action, action.name);
            assert.equal(answer.dryRun, false);
            assert.deepEqual(answer.target, { namespace: pod.namespace, pod: pod.name });
            assert.ok(String(answer.message).includes(`the pod '${pod.name}' in the namespace '${pod.namespace}'`), String(answer.message));
            // The pod named, and no other, is read first (its logs too, for capture-evidence) and then changed (deleted,
            // or written with a new version); an action that changes no pod (capture-evidence) wrote what it says.
            assert.equal(calls[0], `GET ${podPath(pod)}`);
            const podCalls = calls.filter((c) => c.includes('/pods/') && !c.startsWith(`GET ${podPath(pod)}/log?`));
            assert.deepEqual(podCalls.filter((c) => !c.endsWith(` ${podPath(pod)}`)), []);
            const touched = (answer.details as { touched: { kind: string; namespace: string; name: string }[] }).touched;
            if (touched.some((t) => t.kind === 'Pod')) {
              const after = cluster.objects.get(podPath(pod)) as { metadata?: { resourceVersion?: string } } | undefined;
              assert.ok(after === undefined || after.metadata?.resourceVersion !== '100', `${podPath(pod)} was not changed`);
            } else {
              for (const t of touched) assert.ok(cluster.objects.has(`/api/v1/namespaces/${t.namespace}/${t.kind.toLowerCase()}s/${t.name}`), `${t.kind} ${t.name} was not written`);
            }
            // The Event that says so is on that pod.
            const events = cluster.under(`/api/v1/namespaces/${pod.namespace}/events/`) as { involvedObject?: { name?: string; namespace?: string } }[];
            assert.deepEqual(
              events.map((e) => [e.involvedObject?.namespace, e.involvedObject?.name]),
              [[pod.namespace, pod.name]],
            );
          }
        });
      }

      it('falco-0.41-terminal-shell-pod with its pod fields "<NA>", as Falco prints an unknown value in text: skipped, no pod', async () => {
        // Given: no published JSON alert carries "<NA>" there (they carry null), but Falco's own text and gRPC output
        // do, and tools that rebuild the JSON from them may pass it on.
        const calls = servedCalls(new MemoryCluster());
        const { handler } = handlerFor(action, LET_THROUGH);
        const body = alert('falco-0.41-terminal-shell-pod');
        body.output_fields['k8s.ns.name'] = '<NA>';
        body.output_fields['k8s.pod.name'] = '<NA>';

        // When
        const answer = await handler(kubelessEvent(body).event, kubelessContext());

        // Then
        assert.deepEqual(answer, {
          status: 'skipped',
          code: 'no-pod',
          reason: 'the alert names no pod (k8s.ns.name is "<NA>", k8s.pod.name is "<NA>"): a host event or a container outside Kubernetes',
        });
        assert.deepEqual(calls, []);
      });
    });
  }
});

describe('alerts as Falco writes them, through every node action', () => {
  for (const action of nodeActions()) {
    describe(action.name, () => {
      for (const shape of SHAPES) {
        it(`${shape.fixture}: ${describeTarget(shape)}, and its node`, async () => {
          // Given: a cluster holding the pod the alert names (if it names one), on the node worker-1
          const cluster = new MemoryCluster().add(nodeObject('worker-1'));
          if ('pod' in shape.target) cluster.add(scheduledPodObject(shape.target.pod.namespace, shape.target.pod.name, 'worker-1'));
          const calls = servedCalls(cluster);
          const log = memoryLogger();
          const handler = handlerOfAction(action, { env: LET_THROUGH, kube: testKube(), log, ownNamespace: 'falco-response' });
          log.lines.splice(0);
          const { event, response } = kubelessEvent(alert(shape.fixture));

          // When
          const answer = await handler(event, kubelessContext());

          // Then
          assert.deepEqual(log.lines.filter((l) => l.level !== 'info'), []);
          if ('testEvent' in shape.target) {
            assert.deepEqual(answer, { status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: nothing to do" });
            assert.deepEqual(calls, []);
          } else if ('noPod' in shape.target) {
            assert.deepEqual(answer, { status: 'skipped', code: 'no-pod', reason: shape.target.noPod });
            assert.deepEqual(calls, [], 'an alert that names no pod makes no call to the API server');
          } else {
            // The pod named is read, then its node, which is changed; the Events are on the node and on that pod.
            const pod = shape.target.pod;
            assert.equal(response.statusCode, 200, JSON.stringify(answer));
            assert.equal(answer.status, 'done', JSON.stringify(answer));
            assert.deepEqual(answer.target, { namespace: pod.namespace, pod: pod.name, node: 'worker-1' });
            assert.deepEqual(calls.slice(0, 2), [`GET ${podPath(pod)}`, 'GET /api/v1/nodes/worker-1']);
            const node = cluster.objects.get('/api/v1/nodes/worker-1') as { metadata: { resourceVersion: string } };
            assert.notEqual(node.metadata.resourceVersion, '7', 'the node was not changed');
            const about = [...cluster.objects]
              .filter(([p]) => p.includes('/events/'))
              .map(([, e]) => (e as { involvedObject: { kind: string; name: string } }).involvedObject);
            assert.deepEqual(about.map((o) => `${o.kind} ${o.name}`).sort(), ['Node worker-1', `Pod ${pod.name}`]);
          }
        });
      }
    });
  }
});

describe('alerts as Falco writes them, through the forwarder: the facts it routes by and the bytes it passes on', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(tmpdir(), 'falco-shapes-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const shape of SHAPES) {
    it(`${shape.fixture}: rule, priority ${shape.priority}, ${shape.tags.length} tag(s), source ${shape.source ?? 'none'}, namespace ${shape.namespace ?? 'none'}`, async () => {
      // Given: one route per fact of the alert, all to label-pod; the body as Kubeless keeps it (the raw bytes)
      const { table, expected } = probeTable(shape, 'label-pod');
      const file = path.join(dir, `${shape.fixture}.json`);
      writeFileSync(file, JSON.stringify(table));
      const log = memoryLogger();
      const handler = forwarderHandler(forwarder, { env: { ROUTES_FILE: file, ACTIONS_NAMESPACE: 'falco-response' }, log });
      log.lines.splice(0);
      const bodies: string[] = [];
      const service = 'testEvent' in shape.target ? undefined : interceptAction(bodies);
      const text = alertText(shape.fixture);
      const { event } = kubelessEvent(alert(shape.fixture));
      (event.extensions.request as { body?: Buffer }).body = Buffer.from(text, 'utf8');

      // When
      const answer = await handler(event, kubelessContext());
      handler.close();

      // Then
      const forwarded = log.lines.find((l) => l.message === 'alert forwarded');
      assert.ok(forwarded !== undefined, JSON.stringify(log.lines));
      assert.equal(forwarded.namespace, shape.namespace ?? null);
      assert.equal(forwarded.rule, shape.rule);
      assert.equal(forwarded.priority, shape.priority);
      if ('testEvent' in shape.target) {
        assert.deepEqual(answer, { status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: no action is invoked" });
        return;
      }
      service?.done();
      assert.equal(answer.status, 'done', JSON.stringify(answer));
      assert.deepEqual(answer.routes, expected);
      assert.deepEqual((answer.results as { action: string; status: string }[]).map((r) => [r.action, r.status]), [['label-pod', 'done']]);
      // Big integers (evt.time, evt.time.iso8601) and keys such as proc.aname[2] or ka.uri.param[command] reach the
      // action exactly as Falco wrote them.
      assert.deepEqual(bodies, [text]);
    });
  }
});

function describeTarget(shape: Shape): string {
  if ('pod' in shape.target) return `done on the pod '${shape.target.pod.name}' in '${shape.target.pod.namespace}'`;
  if ('noPod' in shape.target) return 'skipped: no pod';
  return "skipped: Falcosidekick's test event";
}
