import { strict as assert } from 'assert';
import * as path from 'path';
import nock from 'nock';
import forwarder from '../../functions/forwarder/router';
import { definePodAction } from '../../lib/action';
import { Admission, OverloadedError } from '../../lib/admission';
import { forwarderHandler } from '../../lib/router/runner';
import type { Kube, KubeRequest } from '../../lib/kube/client';
import { memoryLogger } from '../../lib/log';
import { podActionHandler } from '../helpers/recorded-handler';
import { podObject } from '../helpers/fake-cluster';
import { alert, FIXTURES, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { startStub } from '../helpers/http-stub';

const REFUSALS = 'calls refused with 503: the function is at its limit (MAX_IN_FLIGHT, MAX_QUEUED)';
const queueFull = (inFlight: number, queued: number) =>
  `overloaded: ${inFlight} alerts are being handled and ${queued} are waiting (MAX_IN_FLIGHT, MAX_QUEUED): this one is refused, send it again later`;

/** A gate the slow action waits at, opened by the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** An action that takes as long as the test wants: it waits at the gate, then reports. */
function slowAction(waitAt: Promise<void>) {
  return definePodAction({
    name: 'slow',
    description: 'waits at a gate',
    guardDefaults: { rules: '*' },
    parameters: {},
    permissions: [],
    async run({ target }) {
      await waitAt;
      return { status: 'done', message: `handled ${target.pod.name}`, touched: [] };
    },
  });
}

/** A Kube that finds every pod, counting the calls. */
function findingKube(): Kube & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    request<T>(request: KubeRequest): Promise<T> {
      calls.push(`${request.method} ${request.path}`);
      return Promise.resolve(podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }) as T);
    },
  };
}

/** Lets every promise that can settle now settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('a bounded number of calls in flight, a bounded queue, 503 past it (lib/admission.ts)', function () {
  this.timeout(10000);

  it('pod action: of N+Q+k concurrent calls, exactly k are answered 503 at once, the rest normally', async () => {
    // Given: 2 in flight, 3 waiting, and 4 more calls than that, while the action is slow
    const N = 2;
    const Q = 3;
    const k = 4;
    const slow = gate();
    const log = memoryLogger();
    let clock = 1_000_000;
    const kube = findingKube();
    const handler = podActionHandler(slowAction(slow.opened), {
      // Every wave of admitted calls acts (none is answered from the memory of the one before: SETTLED_SECONDS 0)
      env: { MAX_IN_FLIGHT: String(N), MAX_QUEUED: String(Q), INBOUND_SECRET: 'secret', SETTLED_SECONDS: '0' },
      kube,
      log,
      now: () => clock,
      ownNamespace: 'falco-response',
    });
    log.lines.splice(0);

    // When
    const answered: { index: number; status: number; answer: Record<string, unknown> }[] = [];
    const calls = Array.from({ length: N + Q + k }, (_, index) => {
      const { event, response } = kubelessEvent(alert('terminal-shell'), `event-${index}`);
      const withSecret = { ...event, extensions: { ...event.extensions, request: { headers: { authorization: 'Bearer secret' } } } };
      return handler(withSecret, kubelessContext()).then((answer) => answered.push({ index, status: response.statusCode, answer }));
    });
    await settle();
    const atOnce = [...answered];
    const linesAtOnce = log.lines.map((l) => ({ level: l.level, message: l.message, refused: l.refused, inFlight: l.inFlight, queued: l.queued }));
    // a second later, still full: one more refusal writes the count of all those not logged yet
    clock += 1000;
    const { event: late, response: lateResponse } = kubelessEvent(alert('terminal-shell'), 'late');
    const lateAnswer = await handler({ ...late, extensions: { ...late.extensions, request: { headers: { authorization: 'Bearer secret' } } } }, kubelessContext());
    slow.open();
    await Promise.all(calls);

    // Then: the k last are refused before the slow ones end, with a clear answer
    assert.deepEqual(
      atOnce.map((a) => [a.index, a.status, a.answer]),
      [5, 6, 7, 8].map((index) => [index, 503, { status: 'overloaded', error: queueFull(N, Q) }]),
    );
    assert.deepEqual([lateResponse.statusCode, lateAnswer], [503, { status: 'overloaded', error: queueFull(N, Q) }]);
    // the first refusal is logged at once, the others (same instant) are counted for the next line
    assert.deepEqual(linesAtOnce, [{ level: 'error', message: REFUSALS, refused: 1, inFlight: N, queued: Q }]);
    assert.deepEqual(
      log.lines.filter((l) => l.message === REFUSALS).map((l) => [l.refused, l.maxInFlight, l.maxQueued]),
      [
        [1, N, Q],
        [k, N, Q],
      ],
      'k refusals in two lines: the first, then the k - 1 others and the late one',
    );
    // the N+Q others are answered normally, in order
    const normal = answered.filter((a) => a.status !== 503);
    assert.deepEqual(
      normal.map((a) => [a.index, a.status, a.answer.status]),
      [0, 1, 2, 3, 4].map((index) => [index, 200, 'done']),
    );
    // one call per wave of admitted calls: those in flight together on the one pod share one (lib/runner.ts coalescing)
    assert.equal(kube.calls.length, Math.ceil((N + Q) / N), 'a refused call makes no Kubernetes call');
    assert.equal(log.lines.filter((l) => l.message === 'alert handled').length, N + Q, 'a refused call gets no line of its own');
  });

  it('the forwarder: of N+Q+k concurrent alerts, exactly k are answered 503 at once, the others forwarded', async () => {
    nock.enableNetConnect('127.0.0.1');
    const stub = await startStub(() => ({ status: 200, body: { status: 'done', message: 'ok' }, delayMs: 200 }));
    const log = memoryLogger();
    const env = {
      MAX_IN_FLIGHT: '1',
      MAX_QUEUED: '1',
      ROUTES_FILE: path.join(FIXTURES, 'routes', 'fan-out.json'),
      ACTION_ENDPOINTS: JSON.stringify({ 'label-pod': stub.url, 'network-isolate': stub.url, 'delete-pod': stub.url }),
    };
    const handler = forwarderHandler(forwarder, { env, log });
    try {
      const answered: [number, number, unknown][] = [];
      const calls = [0, 1, 2, 3].map((index) => {
        const { event, response } = kubelessEvent(alert('terminal-shell'), `event-${index}`);
        return handler(event, kubelessContext()).then((answer) => answered.push([index, response.statusCode, answer.status]));
      });
      await settle();
      const atOnce = [...answered];
      await Promise.all(calls);

      assert.deepEqual(atOnce, [
        [2, 503, 'overloaded'],
        [3, 503, 'overloaded'],
      ]);
      assert.deepEqual(answered.slice(2), [
        [0, 200, 'done'],
        [1, 200, 'done'],
      ]);
      assert.equal(stub.received.length, 6, 'two alerts forwarded to three actions each');
      assert.deepEqual(
        log.lines.filter((l) => l.message === REFUSALS).map((l) => l.refused),
        [1],
        'the second refusal waits for the next line',
      );
    } finally {
      handler.close();
      await stub.close();
      nock.disableNetConnect();
    }
  });

  describe('Admission', () => {
    it('lets a queued call in when a slot frees, first come first served', async () => {
      const admission = new Admission({ maxInFlight: 1, maxQueued: 2 }, { log: memoryLogger() });
      const order: string[] = [];
      const leaveA = await admission.enter(Date.now() + 5000);
      const b = admission.enter(Date.now() + 5000).then((leave) => (order.push('b'), leave));
      const c = admission.enter(Date.now() + 5000).then((leave) => (order.push('c'), leave));
      assert.deepEqual(admission.load, { inFlight: 1, queued: 2 });
      leaveA();
      (await b)();
      (await c)();
      assert.deepEqual(order, ['b', 'c']);
      assert.deepEqual(admission.load, { inFlight: 0, queued: 0 });
    });

    it('refuses a queued call whose deadline passes before a slot frees, and frees its place in the queue', async () => {
      const log = memoryLogger();
      const admission = new Admission({ maxInFlight: 1, maxQueued: 1 }, { log });
      const leave = await admission.enter(Date.now() + 5000);
      const error = await admission.enter(Date.now() + 20).then(
        () => assert.fail('admitted'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof OverloadedError);
      assert.match(error.message, /^overloaded: no slot came free within the call's deadline \(waited \d+ ms behind 1 alerts in flight, MAX_IN_FLIGHT\): send it again later$/);
      assert.deepEqual(admission.load, { inFlight: 1, queued: 0 });
      leave();
      assert.deepEqual(admission.load, { inFlight: 0, queued: 0 });
      assert.deepEqual(log.lines.map((l) => l.refused), [1]);
    });

    it('logs a burst of refusals in at most one line per interval, and writes the last count even if no refusal follows', async () => {
      // Given: a clock that stands still through the burst, so that however slowly a loaded machine runs the 1000
      // refusals, they fall within one interval (the flush itself is a real timer of that interval)
      let clock = 1_000_000;
      const log = memoryLogger();
      const admission = new Admission({ maxInFlight: 1, maxQueued: 0 }, { log, logIntervalMs: 30, now: () => clock });
      const leave = await admission.enter(clock + 5000);
      const refusals = await Promise.all(Array.from({ length: 1000 }, () => admission.enter(clock + 5000).catch((e: unknown) => e)));
      assert.ok(refusals.every((r) => r instanceof OverloadedError));
      assert.deepEqual(log.lines.map((l) => l.refused), [1], 'the first at once');
      // When: the interval passes, with no refusal after it
      clock += 30;
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(log.lines.map((l) => l.refused), [1, 999], 'then the count of the others, once');
      leave();
    });
  });
});
