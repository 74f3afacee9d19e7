import { strict as assert } from 'assert';
import captureEvidence from '../../functions/capture-evidence/action';
import cordonNode from '../../functions/cordon-node/action';
import labelPod from '../../functions/label-pod/action';
import { DEFAULT_SETTLED_SECONDS } from '../../lib/guards';
import { memoryLogger } from '../../lib/log';
import { TextRegistry } from '../../lib/metrics';
import { readParams } from '../../lib/params';
import { REPEAT_MEMORY_ENTRIES } from '../../lib/repeats';
import { actionHandler } from '../../lib/runner';
import { onAnotherContainer } from '../helpers/action-cases';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { MemoryCluster } from '../helpers/memory-cluster';

const POD = '/api/v1/namespaces/default/pods/kubecon';

/** label-pod on an in-memory cluster holding the pod `kubecon`, on a clock the test moves. */
function labelPodOn(cluster: MemoryCluster, env: Record<string, string> = {}) {
  const log = memoryLogger();
  const metrics = new TextRegistry();
  const clock = { now: Date.parse('2026-01-01T12:00:00.000Z') };
  const handler = actionHandler(labelPod, { env, kube: cluster.kube(), log, metrics, now: () => clock.now, ownNamespace: 'falco-response' });
  log.lines.splice(0);
  let serial = 0;
  const send = async (a: unknown = alert('terminal-shell'), headers: Record<string, string> = {}) => {
    const delivered = kubelessEvent(a, `event-${serial++}`);
    const { response } = delivered;
    const event = { ...delivered.event, extensions: { ...delivered.event.extensions, request: { headers } } };
    const answer = await handler(event, kubelessContext());
    await handler.drain();
    return { answer, status: response.statusCode };
  };
  return { send, log, metrics, clock };
}

/** The calls the cluster received since the last look, as `METHOD path`, the Events left out. */
const calls = (cluster: MemoryCluster) =>
  cluster
    .take()
    .map((c) => `${c.method} ${c.path}`)
    .filter((c) => !c.includes('/events'));

/** A terminal-shell alert on the container `id` of the pod kubecon. */
const onContainer = (id: number) => ({ ...alert('terminal-shell'), output_fields: { ...alert('terminal-shell').output_fields, 'container.id': `c${String(id).padStart(11, '0')}` } });

describe('the settled memory: alike alerts after a call settled their target are answered from it (lib/runner.ts, SETTLED_SECONDS)', () => {
  it('answers settled, saying when and by which alert, logs it and counts it on /metrics, with no Kubernetes call', async () => {
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    const { send, log, metrics, clock } = labelPodOn(cluster);

    const first = await send();
    clock.now += 2500;
    const second = await send();

    assert.equal(first.answer.status, 'done');
    assert.deepEqual(second, {
      status: 200,
      answer: {
        status: 'done',
        action: 'label-pod',
        target: { namespace: 'default', pod: 'kubecon' },
        dryRun: false,
        message:
          "the pod 'kubecon' in the namespace 'default' was settled 2.5 s ago by an alert of the same rule and priority on the same container: " +
          'answered from that, nothing done again and no Kubernetes call (SETTLED_SECONDS 10)',
        details: { touched: [], changed: false, eventRecorded: false },
        settled: { at: '2026-01-01T12:00:00.000Z', by: 'event-0' },
      },
    });
    assert.deepEqual(calls(cluster), [`GET ${POD}`, `PATCH ${POD}`]);
    assert.deepEqual(
      log.lines.map((l) => [l.message, l.eventId, l.settled]),
      [
        ['alert handled', 'event-0', undefined],
        ['alert handled', 'event-1', { at: '2026-01-01T12:00:00.000Z', by: 'event-0' }],
      ],
    );
    const text = metrics.render();
    assert.ok(text.includes('falco_response_settled_total{function="label-pod"} 1\n'), text);
    assert.ok(text.includes('falco_response_alerts_total{function="label-pod",outcome="done",code=""} 2\n'), text);
  });

  it('forgets a target SETTLED_SECONDS after it was settled: the next alike alert reads it again', async () => {
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    const { send, clock } = labelPodOn(cluster, { SETTLED_SECONDS: '3' });

    await send();
    clock.now += 2999;
    assert.ok((await send()).answer.settled !== undefined, 'within 3 s: settled');
    clock.now += 1;
    const after = await send();

    assert.equal(after.answer.settled, undefined);
    assert.match(String(after.answer.message), /is already labelled/);
    assert.deepEqual(calls(cluster), [`GET ${POD}`, `PATCH ${POD}`, `GET ${POD}`]);
  });

  it(`holds at most ${REPEAT_MEMORY_ENTRIES} settled targets, forgetting the oldest first`, async () => {
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    const { send } = labelPodOn(cluster);

    for (let id = 0; id <= REPEAT_MEMORY_ENTRIES; id++) await send(onContainer(id));
    cluster.take();
    const newest = await send(onContainer(REPEAT_MEMORY_ENTRIES));
    const oldest = await send(onContainer(0));

    assert.deepEqual((newest.answer.settled as { by?: unknown } | undefined)?.by, `event-${REPEAT_MEMORY_ENTRIES}`);
    assert.equal(oldest.answer.settled, undefined, 'the oldest was forgotten');
    assert.deepEqual(calls(cluster), [`GET ${POD}`], 'only the forgotten one is read again');
  });

  // The alerts of one target whose identity (a pod's container) or alike-ness differ: each is read, none settled.
  const NOT_SETTLED: [string, unknown, unknown][] = [
    ['another container of the pod name (the pod created again)', alert('terminal-shell'), onAnotherContainer(alert('terminal-shell'))],
    ['another priority on the same container', alert('terminal-shell'), { ...alert('terminal-shell'), priority: 'Emergency' }],
    ['an audit event on the pod, which names no container', alert('k8saudit-attach-exec-pod'), alert('k8saudit-attach-exec-pod')],
  ];
  for (const [what, first, second] of NOT_SETTLED) {
    it(`is not answered from memory: ${what}`, async () => {
      const cluster = new MemoryCluster().addPod('default', 'kubecon').addPod('hello-app', 'nginx-676b6c5bbc-4xc6t');
      const { send } = labelPodOn(cluster, { RULES: '*' });

      const answers = [await send(first), await send(second)];

      assert.deepEqual(
        answers.map((a) => [a.status, a.answer.status, a.answer.settled]),
        [
          [200, 'done', undefined],
          [200, 'done', undefined],
        ],
      );
      assert.equal(calls(cluster).filter((c) => c.startsWith('GET')).length, 2, 'both read the pod');
    });
  }

  it('says `settles: { seconds }` in an answer that settled its target, only to a caller that asks (the forwarder)', async () => {
    const ask = { 'falco-response-settles': 'ask' };
    const answers = [];
    for (const [env, a, headers] of [
      [{}, alert('terminal-shell'), ask],
      [{}, alert('terminal-shell'), {}],
      [{ SETTLED_SECONDS: '0' }, alert('terminal-shell'), ask],
      [{ DRY_RUN: 'true' }, alert('terminal-shell'), ask],
      [{ RULES: '*' }, alert('k8saudit-attach-exec-pod'), ask],
    ] as const) {
      const cluster = new MemoryCluster().addPod('default', 'kubecon').addPod('hello-app', 'nginx-676b6c5bbc-4xc6t');
      const { send } = labelPodOn(cluster, env);
      const first = await send(a, headers);
      const again = await send(a, headers);
      answers.push([first.answer.status, first.answer.settles, again.answer.settles]);
    }
    assert.deepEqual(answers, [
      ['done', { seconds: 10 }, undefined],
      ['done', undefined, undefined],
      ['done', undefined, undefined],
      ['done', undefined, undefined],
      ['done', undefined, undefined],
    ]);
  });

  it(`defaults to ${DEFAULT_SETTLED_SECONDS} s, and to 0 for capture-evidence, whose every alert is evidence of its own`, () => {
    assert.equal(readParams(labelPod.parameters, {}).settledSeconds, Number(DEFAULT_SETTLED_SECONDS));
    assert.equal(readParams(cordonNode.parameters, {}).settledSeconds, Number(DEFAULT_SETTLED_SECONDS));
    assert.equal(readParams(captureEvidence.parameters, {}).settledSeconds, 0);
  });
});
