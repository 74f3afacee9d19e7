import { strict as assert } from 'assert';
import { createRequire } from 'module';
import deletePod from '../../functions/delete-pod/action';
import type { Kube, KubeRequest } from '../../lib/kube/client';
import { LaterQueue } from '../../lib/later';
import { memoryLogger } from '../../lib/log';
import { functionMetrics, promClientRegistry, TextRegistry } from '../../lib/metrics';
import { actionHandler } from '../../lib/runner';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { MemoryCluster } from '../helpers/memory-cluster';

const EVENTS = '/api/v1/namespaces/default/events';

/** A gate: `wait()` resolves once `open()` was called. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, wait: () => opened };
}

/** The in-memory cluster's Kube, holding the calls `held` matches until `gate` opens; every call is recorded. */
function heldKube(cluster: MemoryCluster, held: (request: KubeRequest) => boolean, until: { wait(): Promise<void> }) {
  const inner = cluster.kube();
  const calls: string[] = [];
  const kube: Kube = {
    async request<T>(request: KubeRequest, deadline: number): Promise<T> {
      calls.push(`${request.method} ${request.path}`);
      if (held(request)) await until.wait();
      return inner.request<T>(request, deadline);
    },
  };
  return { kube, calls };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

function deletePodWith(kube: Kube, env: Record<string, string> = {}, options: { auditQueue?: { maxEntries?: number; atOnce?: number } } = {}) {
  const log = memoryLogger();
  const metrics = new TextRegistry();
  const clock = { now: 1_000_000 };
  const handler = actionHandler(deletePod, { env: { MAX_IN_FLIGHT: '16', ...env }, kube, log, metrics, now: () => clock.now, ownNamespace: 'falco-response', ...options });
  log.lines.splice(0);
  return { handler, log, metrics, clock };
}

const call = (handler: ReturnType<typeof actionHandler>, index: number, change: (a: Record<string, any>) => void = () => undefined) => {
  const a = alert('terminal-shell');
  change(a);
  const { event, response } = kubelessEvent(a, `event-${index}`);
  return handler(event, kubelessContext()).then((answer) => ({ answer, status: response.statusCode }));
};

describe('coalescing: alerts for the same action and target while it is in flight share its result (lib/runner.ts)', () => {
  it('a burst of 10 alerts on one pod costs one read and one write; 9 answers say coalesced', async () => {
    // Given: the pod's read held until all 10 alerts are in
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    const held = gate();
    const { kube, calls } = heldKube(cluster, (r) => r.method === 'GET', held);
    const { handler, log, metrics } = deletePodWith(kube);

    // When
    const answers = Array.from({ length: 10 }, (_, i) => call(handler, i));
    await flush();
    held.open();
    const results = await Promise.all(answers);
    await handler.drain();

    // Then
    assert.deepEqual(calls, ['GET /api/v1/namespaces/default/pods/kubecon', 'DELETE /api/v1/namespaces/default/pods/kubecon', `POST ${EVENTS}`]);
    const first = results[0].answer;
    assert.equal(first.status, 'done');
    assert.equal(first.coalesced, undefined);
    for (const { answer, status } of results.slice(1)) assert.deepEqual([status, answer], [200, { ...first, coalesced: true }]);
    assert.deepEqual(
      log.lines.map((l) => [l.message, l.eventId, l.coalesced]),
      results.map((_, i) => ['alert handled', `event-${i}`, i === 0 ? undefined : true]),
    );
    assert.equal(cluster.under(EVENTS).length, 1, 'one Event for the one deletion');
    const text = metrics.render();
    assert.ok(text.includes('falco_response_coalesced_total{function="delete-pod"} 9\n'), text);
    assert.ok(text.includes('falco_response_alerts_total{function="delete-pod",outcome="done",code=""} 10\n'), text);
  });

  it('a failure of the call in flight is the answer of those that shared it, never of an alert that comes after', async () => {
    // Given: the read held, and answered 403 once
    const cluster = new MemoryCluster().addPod('default', 'kubecon').failNext(1, [403, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'pods "kubecon" is forbidden' }], { method: 'GET' });
    const held = gate();
    const { kube, calls } = heldKube(cluster, (r) => r.method === 'GET', held);
    const { handler } = deletePodWith(kube);

    // When: 3 alerts in flight, then one more once they are answered
    const burst = [0, 1, 2].map((i) => call(handler, i));
    await flush();
    held.open();
    const shared = await Promise.all(burst);
    const after = await call(handler, 3);
    await handler.drain();

    // Then
    assert.deepEqual(
      shared.map(({ status, answer }) => [status, answer.status, answer.coalesced]),
      [
        [500, 'failed', undefined],
        [500, 'failed', true],
        [500, 'failed', true],
      ],
    );
    assert.equal(shared[1].answer.error, shared[0].answer.error);
    assert.match(String(shared[0].answer.error), /forbidden/);
    assert.deepEqual([after.status, after.answer.status, after.answer.coalesced], [200, 'done', undefined]);
    assert.deepEqual(calls.filter((c) => c.startsWith('GET')).length, 2, 'one read for the burst, one for the alert after it');
  });

  it('alerts with another rule or priority on the same pod are not coalesced: their checks may say otherwise', async () => {
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    const held = gate();
    const { kube, calls } = heldKube(cluster, (r) => r.method === 'GET', held);
    const { handler } = deletePodWith(kube, { RULES: '*' });

    const answers = [
      call(handler, 0),
      call(handler, 1, (a) => (a.rule = 'Another rule')),
      call(handler, 2, (a) => (a.priority = 'Emergency')),
    ];
    await flush();
    held.open();
    const results = await Promise.all(answers);
    await handler.drain();

    assert.deepEqual(results.map((r) => r.answer.coalesced), [undefined, undefined, undefined]);
    assert.equal(calls.filter((c) => c.startsWith('GET')).length, 3);
  });
});

describe('the audit Event off the answer path (lib/runner.ts, lib/later.ts)', () => {
  it('answers with eventRecorded "queued" before the Event is recorded, then records it', async () => {
    // Given: the Event POST held
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    const held = gate();
    const { kube } = heldKube(cluster, (r) => r.method === 'POST', held);
    const { handler, metrics } = deletePodWith(kube);

    // When
    const { answer } = await call(handler, 0);

    // Then: answered, the Event not yet there
    assert.equal((answer.details as Record<string, unknown>).eventRecorded, 'queued');
    assert.equal(cluster.under(EVENTS).length, 0);
    held.open();
    await handler.drain();
    assert.equal(cluster.under(EVENTS).length, 1);
    assert.ok(metrics.render().includes('falco_response_audit_events_total{function="delete-pod",result="recorded"} 1\n'));
  });

  it('a full queue drops the Event: answered "dropped", logged in one line, counted; those queued are recorded', async () => {
    // Given: one Event at a time, one waiting, the POSTs held
    const cluster = new MemoryCluster().addPod('default', 'a').addPod('default', 'b').addPod('default', 'c');
    const held = gate();
    const { kube } = heldKube(cluster, (r) => r.method === 'POST', held);
    const { handler, log, metrics } = deletePodWith(kube, {}, { auditQueue: { maxEntries: 1, atOnce: 1 } });

    // When: three deletions of three pods
    const results = [];
    for (const [i, pod] of ['a', 'b', 'c'].entries()) results.push(await call(handler, i, (a) => (a.output_fields['k8s.pod.name'] = pod)));
    held.open();
    await handler.drain();

    // Then
    assert.deepEqual(
      results.map((r) => [r.answer.status, (r.answer.details as Record<string, unknown>).eventRecorded]),
      [
        ['done', 'queued'],
        ['done', 'queued'],
        ['done', 'dropped'],
      ],
    );
    assert.equal(cluster.under(EVENTS).length, 2);
    const drops = log.lines.filter((l) => l.level === 'error');
    assert.deepEqual(
      drops.map((l) => [l.message, l.dropped]),
      [['audit Events dropped: the queue of Events to record is full; the changes were made and answered', 1]],
    );
    const text = metrics.render();
    assert.ok(text.includes('falco_response_audit_events_total{function="delete-pod",result="dropped"} 1\n'), text);
    assert.ok(text.includes('falco_response_audit_events_total{function="delete-pod",result="recorded"} 2\n'), text);
  });

  it('a queue counts a task that fails or throws as failed, and drain() waits for the tasks taken', async () => {
    const results: string[] = [];
    const queue = new LaterQueue({ atOnce: 2, settled: (r) => results.push(r) });
    queue.add(() => Promise.resolve(true));
    queue.add(() => Promise.resolve(false));
    queue.add(() => Promise.reject(new Error('boom')));
    await queue.drain();
    assert.deepEqual(results.sort(), ['done', 'failed', 'failed']);
    assert.deepEqual(queue.load, { queued: 0, running: 0 });
  });
});

describe('the metrics of every function (lib/metrics.ts, lib/entry.ts)', () => {
  it('renders the exact text after a done, a skip and a refusal', async () => {
    // Given: a clock that stands still, so every answer takes 0 s
    const cluster = new MemoryCluster().addPod('default', 'kubecon');
    const { handler, metrics } = deletePodWith(cluster.kube(), { INBOUND_SECRET: 'secret' });
    const authorized = (i: number, change: (a: Record<string, any>) => void = () => undefined) => {
      const a = alert('terminal-shell');
      change(a);
      const { event } = kubelessEvent(a, `event-${i}`);
      return handler({ ...event, extensions: { ...event.extensions, request: { headers: { authorization: 'Bearer secret' } } } }, kubelessContext());
    };

    // When
    await authorized(0);
    await authorized(1, (a) => (a.rule = 'Not selected'));
    await handler(kubelessEvent(alert('terminal-shell'), 'event-2').event, kubelessContext());
    await handler.drain();

    // Then
    const buckets = ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '+Inf'];
    assert.equal(
      metrics.render(),
      [
        '# HELP falco_response_alerts_total Alerts answered, by function, outcome (the answer status) and code (the skip code, or the failure code of a refusal such as shielded-binding; empty otherwise).',
        '# TYPE falco_response_alerts_total counter',
        'falco_response_alerts_total{function="delete-pod",outcome="done",code=""} 1',
        'falco_response_alerts_total{function="delete-pod",outcome="skipped",code="rule-not-selected"} 1',
        "# HELP falco_response_answer_seconds Time from a call's arrival to its answer, in seconds (calls refused are not in it: 401 unauthorized, 500 secret-unusable or secret-missing, 503 overloaded).",
        '# TYPE falco_response_answer_seconds histogram',
        ...buckets.map((le) => `falco_response_answer_seconds_bucket{function="delete-pod",le="${le}"} 2`),
        'falco_response_answer_seconds_sum{function="delete-pod"} 0',
        'falco_response_answer_seconds_count{function="delete-pod"} 2',
        '# HELP falco_response_refused_total Calls refused before their alert was read: unauthorized (401), secret-unusable (500: INBOUND_SECRET is broken), secret-missing (500: the function requires INBOUND_SECRET and has none) or overloaded (503).',
        '# TYPE falco_response_refused_total counter',
        'falco_response_refused_total{function="delete-pod",reason="unauthorized"} 1',
        '# HELP falco_response_coalesced_total Alerts answered with the result of a call in flight for the same action and target.',
        '# TYPE falco_response_coalesced_total counter',
        '# HELP falco_response_settled_total Alerts answered from the memory of the call that settled the same target for an alike alert, with no Kubernetes call (SETTLED_SECONDS).',
        '# TYPE falco_response_settled_total counter',
        '# HELP falco_response_audit_events_total Audit Events queued after an answer, by result: recorded, failed or dropped.',
        '# TYPE falco_response_audit_events_total counter',
        'falco_response_audit_events_total{function="delete-pod",result="recorded"} 1',
        '',
      ].join('\n'),
    );
  });

  it("counts into prom-client 10's default registry, the one Kubeless's runtime serves", () => {
    // Given: prom-client as Kubeless's runtime pins it (^10.0.2), loaded as require.main.require loads it
    const client: any = createRequire(__filename)('prom-client');
    client.register.clear();

    // When: two functions' metrics (the second finds the metrics the first registered)
    const metrics = functionMetrics('delete-pod', promClientRegistry(client));
    metrics.answered('done', '', 0.003);
    metrics.answered('skipped', 'pod-gone', 0.0004);
    metrics.refused('overloaded');
    functionMetrics('label-pod', promClientRegistry(client)).coalesced();

    // Then
    const text = String(client.register.metrics());
    client.register.clear();
    for (const line of [
      '# TYPE falco_response_alerts_total counter',
      'falco_response_alerts_total{function="delete-pod",outcome="done",code=""} 1',
      'falco_response_alerts_total{function="delete-pod",outcome="skipped",code="pod-gone"} 1',
      '# TYPE falco_response_answer_seconds histogram',
      'falco_response_answer_seconds_bucket{le="0.001",function="delete-pod"} 1',
      'falco_response_answer_seconds_bucket{le="0.005",function="delete-pod"} 2',
      'falco_response_answer_seconds_count{function="delete-pod"} 2',
      'falco_response_refused_total{function="delete-pod",reason="overloaded"} 1',
      'falco_response_coalesced_total{function="label-pod"} 1',
    ]) {
      assert.ok(text.split('\n').includes(line), `no line ${line} in\n${text}`);
    }
  });
});
