import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import nock from 'nock';
import forwarder from '../../functions/forwarder/router';
import { forwarderHandler, type ForwarderHandler } from '../../lib/router/runner';
import { memoryLogger } from '../../lib/log';
import { budgetMs } from '../../lib/entry';
import { RECHECK_MS } from '../../lib/router/followed-file';
import { ConfigMapVolume } from '../helpers/configmap-volume';
import { startStub, type HttpStub, type ReceivedRequest, type StubAnswer } from '../helpers/http-stub';
import { alert, alertText, FIXTURES, kubelessContext, kubelessEvent } from '../helpers/fixtures';

const EVENT_ID = '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f';
/** What the forwarder logs when its routing table becomes unusable, and when an edit of it takes effect. */
const UNUSABLE = 'the routing table is unusable: every call will fail until it is fixed (it is read again when it changes)';
const CHANGED = 'the routing table changed: the new one is in effect';
const routesFile = (name: string) => path.join(FIXTURES, 'routes', `${name}.json`);

/** What an action built by lib/runner.ts answers, in the shape the forwarder passes on. */
const done = (message: string): StubAnswer => ({ status: 200, body: { status: 'done', action: 'x', message } });

describe('forwarder: fan-out over HTTP to the actions (on 127.0.0.1)', function () {
  this.timeout(10000);
  let stubs: HttpStub[] = [];
  let handlers: ForwarderHandler[] = [];

  before(() => nock.enableNetConnect('127.0.0.1'));
  after(() => nock.disableNetConnect());
  afterEach(async () => {
    handlers.forEach((h) => h.close());
    await Promise.all(stubs.map((s) => s.close()));
    stubs = [];
    handlers = [];
  });

  async function stub(answer: (request: ReceivedRequest) => StubAnswer, onRequest?: (request: ReceivedRequest) => void): Promise<HttpStub> {
    const s = await startStub(answer, onRequest);
    stubs.push(s);
    return s;
  }

  /** The forwarder, with the log lines of its calls (those it writes at load, that no secret is set, dropped). */
  function forwarderWith(env: Record<string, string>) {
    const log = memoryLogger();
    const handler = forwarderHandler(forwarder, { env, log });
    log.lines.splice(0);
    handlers.push(handler);
    return { handler, log };
  }

  const endpoints = (map: Record<string, HttpStub>) => JSON.stringify(Object.fromEntries(Object.entries(map).map(([k, s]) => [k, s.url])));

  it('reports an action at its limit (503 overloaded) and one refusing the secret (401) by what they said, as not done', async () => {
    // Given
    const busy = await stub(() => ({ status: 503, body: { status: 'overloaded', error: 'overloaded: 8 alerts are being handled and 8 are waiting' } }));
    const refusing = await stub(() => ({ status: 401, body: { status: 'unauthorized', error: 'unauthorized: the call did not carry the shared secret' } }));
    const ok = await stub(() => done('deleted'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('fan-out'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': busy, 'network-isolate': refusing, 'delete-pod': ok }),
    });
    const { event, response } = kubelessEvent(alert('terminal-shell'));

    // When
    const answer = await handler(event, kubelessContext(3));

    // Then
    assert.equal(response.statusCode, 502);
    assert.deepEqual(
      (answer.results as any[]).map((r) => [r.action, r.status, r.ok, r.httpStatus, r.message]),
      [
        ['label-pod', 'overloaded', false, 503, 'overloaded: 8 alerts are being handled and 8 are waiting'],
        ['network-isolate', 'unauthorized', false, 401, 'unauthorized: the call did not carry the shared secret'],
        ['delete-pod', 'done', true, 200, 'deleted'],
      ],
    );
  });

  it('reports all three results when one action is slow past its timeout, one fails and one succeeds, within the deadline', async () => {
    // Given
    const ok = await stub(() => done("labelled the pod 'kubecon' in the namespace 'default'"));
    const slow = await stub(() => ({ ...done('isolated'), delayMs: 5000 }));
    const failing = await stub(() => ({ status: 500, body: { status: 'failed', error: 'delete the pod failed: the API server answered 403 Forbidden' } }));
    const { handler, log } = forwarderWith({
      ROUTES_FILE: routesFile('fan-out'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': ok, 'network-isolate': slow, 'delete-pod': failing }),
      CALL_TIMEOUT_SECONDS: '1',
    });
    const { event, response } = kubelessEvent(alert('terminal-shell'));
    const context = kubelessContext(3);

    // When
    const started = Date.now();
    const answer = await handler(event, context);
    const elapsed = Date.now() - started;

    // Then
    assert.equal(response.statusCode, 502);
    assert.ok(elapsed < budgetMs(context), `answered after ${elapsed} ms, past the deadline of ${budgetMs(context)} ms`);
    const results = answer.results as any[];
    assert.deepEqual(
      results.map((r) => ({ ...r, durationMs: typeof r.durationMs })),
      [
        {
          action: 'label-pod',
          routes: ['everything'],
          status: 'done',
          ok: true,
          httpStatus: 200,
          durationMs: 'number',
          message: "labelled the pod 'kubecon' in the namespace 'default'",
          answer: { status: 'done', action: 'x', message: "labelled the pod 'kubecon' in the namespace 'default'" },
        },
        {
          action: 'network-isolate',
          routes: ['everything'],
          status: 'failed',
          ok: false,
          httpStatus: null,
          durationMs: 'number',
          message: 'no answer within 1000 ms (CALL_TIMEOUT_SECONDS)',
        },
        {
          action: 'delete-pod',
          routes: ['everything'],
          status: 'failed',
          ok: false,
          httpStatus: 500,
          durationMs: 'number',
          message: 'delete the pod failed: the API server answered 403 Forbidden',
          answer: { status: 'failed', error: 'delete the pod failed: the API server answered 403 Forbidden' },
        },
      ],
    );
    assert.equal(answer.status, 'actions-failed');
    assert.equal(
      answer.error,
      '2 of 3 action(s) did not succeed: network-isolate failed (no answer within 1000 ms (CALL_TIMEOUT_SECONDS)); ' +
        'delete-pod failed (delete the pod failed: the API server answered 403 Forbidden)',
    );
    assert.deepEqual([ok.received.length, slow.received.length, failing.received.length], [1, 1, 1]);
    assert.equal(log.lines.length, 1);
    assert.equal(log.lines[0].level, 'error');
    assert.deepEqual(
      (log.lines[0].results as any[]).map((r) => [r.action, r.status, r.httpStatus]),
      [
        ['label-pod', 'done', 200],
        ['network-isolate', 'failed', null],
        ['delete-pod', 'failed', 500],
      ],
    );
  });

  it("cuts a slow action at the forwarder's own deadline when that comes before the per-call timeout", async () => {
    const slow = await stub(() => ({ ...done('late'), delayMs: 5000 }));
    const ok = await stub(() => done('fine'));
    const failing = await stub(() => done('fine too'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('fan-out'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': ok, 'network-isolate': slow, 'delete-pod': failing }),
      CALL_TIMEOUT_SECONDS: '60',
    });
    const context = kubelessContext(1); // FUNC_TIMEOUT 1 s: a budget of 900 ms

    const started = Date.now();
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, context);
    const elapsed = Date.now() - started;

    assert.ok(elapsed < 1000, `answered after ${elapsed} ms: Kubeless's FUNC_TIMEOUT of 1 s has passed`);
    const isolate = (answer.results as any[]).find((r) => r.action === 'network-isolate');
    // What was left of the 900 ms budget when the call started: less on a busy machine, never more.
    const left = /^no answer within (\d+) ms \(the forwarder's own deadline\)$/.exec(isolate.message);
    assert.ok(left !== null, isolate.message);
    assert.ok(Number(left[1]) > 0 && Number(left[1]) <= 900, isolate.message);
  });

  it('sends every action the headers Falcosidekick sends, the same event-id and the same body', async () => {
    // Given
    const stubsByAction = { 'label-pod': await stub(() => done('a')), 'network-isolate': await stub(() => done('b')), 'delete-pod': await stub(() => done('c')) };
    const { handler } = forwarderWith({ ROUTES_FILE: routesFile('fan-out'), ACTION_ENDPOINTS: endpoints(stubsByAction) });
    const { event, response } = kubelessEvent(alert('terminal-shell'), EVENT_ID);

    // When
    const answer = await handler(event, kubelessContext());

    // Then
    assert.equal(response.statusCode, 200);
    assert.equal(answer.status, 'done');
    assert.equal(answer.eventId, EVENT_ID);
    assert.equal(answer.message, 'forwarded to 3 action(s): label-pod done, network-isolate done, delete-pod done');
    for (const s of Object.values(stubsByAction)) {
      assert.equal(s.received.length, 1);
      const [request] = s.received;
      assert.equal(request.method, 'POST');
      assert.equal(request.url, '/');
      assert.equal(request.headers['content-type'], 'application/json');
      assert.equal(request.headers['user-agent'], 'Falcosidekick');
      assert.equal(request.headers['event-id'], EVENT_ID);
      assert.equal(request.headers['event-type'], 'falco');
      assert.equal(request.headers['event-namespace'], 'falco-response', 'no namespace known: the incoming one is passed on');
      assert.deepEqual(JSON.parse(request.body.toString('utf8')), JSON.parse(JSON.stringify(alert('terminal-shell'))));
    }
  });

  it('passes on the very bytes Falcosidekick sent when the runtime kept them, big integers intact', async () => {
    const s = await stub(() => done('a'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('fan-out'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': s, 'network-isolate': s, 'delete-pod': s }),
    });
    const raw = Buffer.from(`${alertText('terminal-shell')}\n`, 'utf8');
    const { event } = kubelessEvent(JSON.parse(raw.toString('utf8')));
    (event.extensions.request as { body?: Buffer }).body = raw; // as Kubeless's Express keeps it

    await handler(event, kubelessContext());

    assert.equal(s.received.length, 3);
    for (const r of s.received) assert.ok(r.body.equals(raw));
    assert.ok(s.received[0].body.toString('utf8').includes('"evt.time":1685022245478445995'));
  });

  it('makes an event-id when the caller sent none, and gives every action the same one', async () => {
    const s = await stub(() => done('a'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('fan-out'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': s, 'network-isolate': s, 'delete-pod': s }),
    });
    const { event } = kubelessEvent(alert('terminal-shell'));
    (event as Record<string, unknown>)['event-id'] = undefined;

    const answer = await handler(event, kubelessContext());

    const ids = new Set(s.received.map((r) => r.headers['event-id']));
    assert.equal(ids.size, 1);
    assert.match(String([...ids][0]), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(answer.eventId, [...ids][0]);
  });

  it('invokes an action once when several routes name it, runs a sequential route in order, and reports every route', async () => {
    // Given a Critical terminal shell: "shell" (label-pod then network-isolate) and "critical-anywhere" (label-pod, delete-pod)
    const order: string[] = [];
    const label = await stub(() => ({ ...done('labelled'), delayMs: 50 }), () => order.push('label-pod asked'));
    const isolate = await stub(() => done('isolated'), () => order.push('network-isolate asked'));
    const del = await stub(() => done('deleted'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('several'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': label, 'network-isolate': isolate, 'delete-pod': del }),
    });

    // When
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    // Then
    assert.deepEqual([label.received.length, isolate.received.length, del.received.length], [1, 1, 1]);
    assert.deepEqual(order, ['label-pod asked', 'network-isolate asked']);
    assert.deepEqual(answer.routes, ['shell', 'critical-anywhere']);
    assert.deepEqual(
      (answer.results as any[]).map((r) => [r.action, r.routes, r.status]),
      [
        ['label-pod', ['shell', 'critical-anywhere'], 'done'],
        ['network-isolate', ['shell'], 'done'],
        ['delete-pod', ['critical-anywhere'], 'done'],
      ],
    );
  });

  it('stops a sequential route at a failure: the next action is reported, not invoked', async () => {
    const label = await stub(() => ({ status: 500, body: { status: 'failed', error: 'patch refused' } }));
    const isolate = await stub(() => done('isolated'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('several'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': label, 'network-isolate': isolate, 'delete-pod': isolate }),
    });
    const a = alert('terminal-shell');
    a.priority = 'Notice'; // only the sequential route "shell"
    const { event, response } = kubelessEvent(a);

    const answer = await handler(event, kubelessContext());

    assert.equal(response.statusCode, 502);
    assert.equal(isolate.received.length, 0);
    assert.deepEqual((answer.results as any[])[1], {
      action: 'network-isolate',
      routes: ['shell'],
      status: 'not-invoked',
      ok: false,
      httpStatus: null,
      durationMs: 0,
      message: "not invoked: label-pod, before it in the sequential route 'shell', did not succeed",
    });
  });

  it('reports an action that cannot be reached, and the others still run', async () => {
    const closed = await stub(() => done('never'));
    const deadUrl = closed.url;
    await closed.close();
    stubs = stubs.filter((s) => s !== closed);
    const ok = await stub(() => done('fine'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('fan-out'),
      ACTION_ENDPOINTS: JSON.stringify({ 'label-pod': ok.url, 'network-isolate': deadUrl, 'delete-pod': ok.url }),
    });

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    const results = answer.results as any[];
    assert.deepEqual(results.map((r) => r.ok), [true, false, true]);
    assert.match(results[1].message, /^connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
  });

  it('answers 200 skipped with the reasons when no route takes the alert, and calls nothing', async () => {
    const s = await stub(() => done('never'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('several'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': s, 'network-isolate': s, 'delete-pod': s }),
    });
    const { event, response } = kubelessEvent(alert('host-write-below-etc'));

    const answer = await handler(event, kubelessContext());

    assert.equal(response.statusCode, 200);
    assert.deepEqual(answer, {
      status: 'skipped',
      code: 'no-route',
      reason:
        'no route takes the rule "Write below etc" (priority Error): shell: the rule is not selected; ' +
        'critical-anywhere: the priority Error is below Critical; k8s-api: the rule is not selected',
    });
    assert.equal(s.received.length, 0);
  });

  it("skips Falcosidekick's test event without calling anything", async () => {
    const s = await stub(() => done('never'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('fan-out'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': s, 'network-isolate': s, 'delete-pod': s }),
    });
    const { event, response } = kubelessEvent(alert('sidekick-test-event'));

    const answer = await handler(event, kubelessContext());

    assert.equal(response.statusCode, 200);
    assert.deepEqual(answer, { status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: no action is invoked" });
    assert.equal(s.received.length, 0);
  });

  it('answers 400 to invalid input without invoking anything', async () => {
    const s = await stub(() => done('never'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('fan-out'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': s, 'network-isolate': s, 'delete-pod': s }),
    });
    const badNamespace = alert('terminal-shell');
    badNamespace.output_fields['k8s.ns.name'] = 'Default';
    const cases: [unknown, string][] = [
      [{}, 'the request body is empty: expected a Falco alert as JSON'],
      [{ ...alert('terminal-shell'), priority: 'loud' }, 'alert: priority: expected one of Debug, Informational, Notice, Warning, Error, Critical, Alert, Emergency (any case), got "loud"'],
      [badNamespace, `alert: output_fields["k8s.ns.name"]: expected a namespace name (lowercase letters, digits and '-', at most 63), got "Default"`],
    ];
    for (const [data, error] of cases) {
      const { event, response } = kubelessEvent(data);
      const answer = await handler(event, kubelessContext());
      assert.equal(response.statusCode, 400);
      assert.deepEqual(answer, { status: 'invalid', error });
    }
    const { event, response } = kubelessEvent(alert('terminal-shell'), 'id with spaces');
    assert.deepEqual(await handler(event, kubelessContext()), {
      status: 'invalid',
      error: 'event: event-id: expected printable text without spaces, at most 200 characters (a UUID), got "id with spaces"',
    });
    assert.equal(response.statusCode, 400);
    assert.equal(s.received.length, 0);
  });

  it('logs a refused event-id of 10,000 characters cut short, as it logs a rule', async () => {
    // Given: any header up to the runtime's limit (16 KiB on Node 14)
    const log = memoryLogger();
    const handler = forwarderHandler(forwarder, { env: { ROUTES_FILE: path.join(FIXTURES, 'routes', 'fan-out.json'), ACTIONS_NAMESPACE: 'falco-response' }, log });
    const eventId = 'x'.repeat(9_999) + ' ';

    // When
    const answer = await handler(kubelessEvent(alert('terminal-shell'), eventId).event, kubelessContext());
    handler.close();

    // Then
    assert.equal(answer.status, 'invalid');
    assert.deepEqual(log.lines.filter((l) => l.message === 'alert forwarded').map((l) => l.eventId), [`${'x'.repeat(200)}… (10000 characters)`]);
  });

  it('reuses kept-alive connections from one alert to the next', async () => {
    const s = await stub(() => done('a'));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('several'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': s, 'network-isolate': s, 'delete-pod': s }),
    });
    const a = alert('terminal-shell');
    a.priority = 'Notice'; // the sequential route: one call at a time

    // nock's interception opens a socket per request even when it lets it through: this test needs real sockets.
    nock.restore();
    try {
      for (let i = 0; i < 5; i++) await handler(kubelessEvent(a).event, kubelessContext());
    } finally {
      nock.activate();
    }

    assert.equal(s.received.length, 10);
    assert.equal(s.connections(), 1);
  });

  it('keeps at most MAX_CONCURRENT_CALLS calls in flight, over all alerts', async () => {
    const s = await stub(() => ({ ...done('a'), delayMs: 30 }));
    const { handler } = forwarderWith({
      ROUTES_FILE: routesFile('fan-out'),
      ACTION_ENDPOINTS: endpoints({ 'label-pod': s, 'network-isolate': s, 'delete-pod': s }),
      MAX_CONCURRENT_CALLS: '2',
    });

    const answers = await Promise.all([1, 2, 3].map(() => handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext())));

    assert.deepEqual(answers.map((a) => a.status), ['done', 'done', 'done']);
    assert.equal(s.received.length, 9);
    assert.equal(s.inFlight().max, 2);
  });
});

describe('forwarder: configuration: parameters read at load, the routing table followed while it runs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'forwarder-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function loaded(env: Record<string, string>) {
    const log = memoryLogger();
    const handler = forwarderHandler(forwarder, { env: { KUBE_SERVICEACCOUNT_DIR: dir, ...env }, log });
    handler.close();
    return { handler, log };
  }

  it('answers every call 500 with the message of a bad table, and logs it once, loudly', async () => {
    // Given
    const file = path.join(dir, 'routes.json');
    writeFileSync(file, JSON.stringify({ routes: [{ name: 'shell', rules: ['Terminal shell in container'], actions: ['label-pod'], mode: 'serial' }] }));
    const { handler, log } = loaded({ ROUTES_FILE: file, ACTIONS_NAMESPACE: 'falco-response' });
    const expected = `invalid configuration: the routing table ${file}: routes[0] ("shell").mode: expected "parallel" or "sequential", got "serial"`;

    // When
    const answers = [];
    for (let i = 0; i < 2; i++) {
      const { event, response } = kubelessEvent(alert('terminal-shell'));
      answers.push([await handler(event, kubelessContext()), response.statusCode]);
    }

    // Then
    assert.deepEqual(answers, [
      [{ status: 'failed', error: expected }, 500],
      [{ status: 'failed', error: expected }, 500],
    ]);
    const loud = log.lines.filter((l) => l.message === UNUSABLE);
    assert.deepEqual(loud.map((l) => [l.level, l.error]), [['error', expected]]);
    assert.equal(log.lines.indexOf(loud[0]), 2, 'said at load, before any call (after the warnings that no secret is set)');
  });

  it('logs a bad parameter once, loudly, at load', () => {
    const { log } = loaded({ ROUTES_FILE: routesFile('fan-out'), ACTIONS_NAMESPACE: 'x', MAX_CONCURRENT_CALLS: 'many' });
    assert.deepEqual(
      log.lines.filter((l) => l.level === 'error').map((l) => [l.level, l.message, l.error]),
      [['error', 'the function cannot start: every call will fail until the configuration is fixed', 'invalid configuration: MAX_CONCURRENT_CALLS: expected a whole number from 1 to 256, got "many"']],
    );
  });

  describe('an edited routing table takes effect without a restart', () => {
    const SERVICE = 'http://label-pod.falco-response.svc.cluster.local:8080';
    const shellToLabel = { routes: [{ name: 'shell', rules: ['Terminal shell in container'], actions: ['label-pod'] }] };
    const otherRuleOnly = { routes: [{ name: 'other', rules: ['Read sensitive file untrusted'], actions: ['label-pod'] }] };
    let clock: number;

    /** A forwarder on a table file and a clock of the test's own: RECHECK_MS pass when the test says so. */
    function following(file: string) {
      clock = 1_000_000;
      const log = memoryLogger();
      const handler = forwarderHandler(forwarder, { env: { ROUTES_FILE: file, ACTIONS_NAMESPACE: 'falco-response' }, log, now: () => clock });
      const call = async () => {
        const { event, response } = kubelessEvent(alert('terminal-shell'));
        const answer = await handler(event, kubelessContext());
        return { answer, status: response.statusCode };
      };
      return { handler, log, call };
    }

    const labelPodAnswers = (times: number) =>
      nock(SERVICE).post('/').times(times).reply(200, { status: 'done', action: 'label-pod', message: 'labelled' });

    it('reads the file again once RECHECK_MS have passed, and logs the change once', async () => {
      // Given: a table that routes the alert to label-pod
      const file = path.join(dir, 'routes.json');
      writeFileSync(file, JSON.stringify(shellToLabel));
      const { handler, log, call } = following(file);
      const service = labelPodAnswers(2);
      assert.equal((await call()).answer.status, 'done');

      // When: the table stops routing that rule; within RECHECK_MS the old table still holds, after it the new one
      writeFileSync(file, JSON.stringify(otherRuleOnly));
      clock += RECHECK_MS - 1;
      const before = await call();
      clock += 1;
      const after = await call();
      const again = await call();
      handler.close();

      // Then
      service.done();
      assert.equal(before.answer.status, 'done');
      assert.deepEqual([after.status, after.answer.status, after.answer.code], [200, 'skipped', 'no-route']);
      assert.equal(again.answer.status, 'skipped');
      const changes = log.lines.filter((l) => l.message === CHANGED);
      assert.deepEqual(changes.map((l) => [l.level, l.file]), [['info', file]]);
    });

    it('answers 500 with the reason while an edit leaves the table broken, logs it once, and recovers when it is fixed', async () => {
      // Given
      const file = path.join(dir, 'routes.json');
      writeFileSync(file, JSON.stringify(shellToLabel));
      const { handler, log, call } = following(file);
      const service = labelPodAnswers(1);

      // When: broken (a misspelt criterion), three calls; then fixed
      writeFileSync(file, JSON.stringify({ routes: [{ name: 'shell', rules: ['Terminal shell in container'], minPriority: 'Notice', actions: ['label-pod'] }] }));
      const broken = [];
      for (let i = 0; i < 3; i++) {
        clock += RECHECK_MS;
        broken.push(await call());
      }
      writeFileSync(file, JSON.stringify(shellToLabel));
      clock += RECHECK_MS;
      const fixed = await call();
      handler.close();

      // Then
      service.done();
      const reason = broken[0].answer.error as string;
      assert.match(reason, new RegExp(`^invalid configuration: the routing table ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: routes\\[0\\] \\("shell"\\)\\.minPriority: `));
      assert.deepEqual(broken.map((b) => [b.status, b.answer]), Array(3).fill([500, { status: 'failed', error: reason }]));
      assert.equal(fixed.answer.status, 'done');
      assert.deepEqual(
        log.lines.filter((l) => l.message === UNUSABLE || l.message === CHANGED).map((l) => [l.level, l.message, l.error]),
        [
          ['error', UNUSABLE, reason],
          ['info', CHANGED, undefined],
        ],
      );
    });

    it('follows a ConfigMap volume as the kubelet updates it: a ..data link swapped atomically to a new folder', async () => {
      // Given: <mount>/routes.json -> ..data/routes.json, ..data -> ..<version>/ (the layout of a mounted ConfigMap)
      const volume = ConfigMapVolume.create(path.join(dir, 'mount'), 'routes.json', JSON.stringify(shellToLabel));
      const { handler, log, call } = following(volume.path);
      const service = labelPodAnswers(1);
      const first = await call();

      // When: the ConfigMap is edited
      volume.publish(JSON.stringify(otherRuleOnly));
      clock += RECHECK_MS;
      const second = await call();
      handler.close();

      // Then
      service.done();
      assert.equal(first.answer.status, 'done');
      assert.equal(second.answer.code, 'no-route');
      assert.equal(log.lines.filter((l) => l.message === CHANGED).length, 1);
    });

    it('answers 500 naming the file while it cannot be read, and recovers when it is back', async () => {
      // Given
      const file = path.join(dir, 'routes.json');
      writeFileSync(file, JSON.stringify(otherRuleOnly));
      const { handler, log, call } = following(file);

      // When
      rmSync(file);
      clock += RECHECK_MS;
      const gone = await call();
      writeFileSync(file, JSON.stringify(otherRuleOnly));
      clock += RECHECK_MS;
      const back = await call();
      handler.close();

      // Then
      const reason = `invalid configuration: ROUTES_FILE: cannot read the routing table at ${file}: ENOENT: no such file or directory, open '${file}'`;
      assert.deepEqual([gone.status, gone.answer], [500, { status: 'failed', error: reason }]);
      assert.deepEqual([back.status, back.answer.code], [200, 'no-route']);
      assert.deepEqual(
        log.lines.filter((l) => l.message === UNUSABLE || l.message === CHANGED).map((l) => [l.level, l.error]),
        [
          ['error', reason],
          ['info', undefined],
        ],
      );
    });
  });

  it('names every other configuration problem precisely', async () => {
    const table = routesFile('fan-out');
    const cases: [Record<string, string>, string][] = [
      [{}, 'ROUTES_FILE: not set; it must hold the path of the routing table (the generated Function mounts the ConfigMap forwarder-config and sets it)'],
      [{ ROUTES_FILE: path.join(dir, 'none.json'), ACTIONS_NAMESPACE: 'x' }, `ROUTES_FILE: cannot read the routing table at ${path.join(dir, 'none.json')}: ENOENT: no such file or directory, open '${path.join(dir, 'none.json')}'`],
      [
        { ROUTES_FILE: table },
        "no address for the action(s) label-pod, network-isolate, delete-pod: the forwarder's namespace is unknown (set ACTIONS_NAMESPACE, or POD_NAMESPACE as the generated Function does) and ACTION_ENDPOINTS does not name them",
      ],
      [{ ROUTES_FILE: table, ACTION_ENDPOINTS: '{"label-pod": "http://127.0.0.1:9001/"}' }, "no address for the action(s) network-isolate, delete-pod: the forwarder's namespace is unknown (set ACTIONS_NAMESPACE, or POD_NAMESPACE as the generated Function does) and ACTION_ENDPOINTS does not name them"],
      [
        { ROUTES_FILE: table, ACTION_ENDPOINTS: '{"label-pod": "https://127.0.0.1:9001/"}' },
        'ACTION_ENDPOINTS: expected a JSON object of action names to http:// URLs, such as {"delete-pod":"http://127.0.0.1:9001/"} (the value for label-pod, "https://127.0.0.1:9001/", is not an http:// URL), got "{\\"label-pod\\": \\"https://127.0.0.1:9001/\\"}"',
      ],
      [
        { ROUTES_FILE: table, ACTION_ENDPOINTS: 'label-pod=http://127.0.0.1:9001/' },
        'ACTION_ENDPOINTS: expected a JSON object of action names to http:// URLs, such as {"delete-pod":"http://127.0.0.1:9001/"} (this is not JSON), got "label-pod=http://127.0.0.1:9001/"',
      ],
      [{ ROUTES_FILE: table, ACTIONS_NAMESPACE: 'Falco' }, `ACTIONS_NAMESPACE: expected a namespace name (lowercase letters, digits and '-', at most 63), or nothing for the forwarder's own, got "Falco"`],
      [{ ROUTES_FILE: table, POD_NAMESPACE: 'a/b' }, 'POD_NAMESPACE: expected a namespace name, got "a/b"'],
      [{ ROUTES_FILE: table, ACTIONS_NAMESPACE: 'x', CALL_TIMEOUT_SECONDS: '0' }, 'CALL_TIMEOUT_SECONDS: expected a whole number from 1 to 600, got "0"'],
      [
        { ROUTES_FILE: writeTable(dir, { routes: [{ name: 'loop', ruleGlobs: ['*'], actions: ['forwarder'] }] }), ACTIONS_NAMESPACE: 'x' },
        `the routing table ${path.join(dir, 'table.json')}: routes[0] ("loop").actions[0]: expected an action other than the forwarder itself (it would call itself), got "forwarder"`,
      ],
    ];
    for (const [env, problem] of cases) {
      const { handler } = loaded(env);
      const { event, response } = kubelessEvent(alert('terminal-shell'));
      assert.deepEqual(await handler(event, kubelessContext()), { status: 'failed', error: `invalid configuration: ${problem}` });
      assert.equal(response.statusCode, 500);
    }
  });

  it("calls each action at its Service in the forwarder's namespace (POD_NAMESPACE, from the downward API)", async () => {
    // Given (strict nock: no real connection; the Service names do not resolve here)
    const expectHeaders = { 'event-id': EVENT_ID, 'event-namespace': 'falco-response', 'user-agent': 'Falcosidekick', 'content-type': 'application/json' };
    const services = ['label-pod', 'network-isolate', 'delete-pod'].map((action) =>
      nock(`http://${action}.falco-response.svc.cluster.local:8080`, { reqheaders: expectHeaders })
        .post('/', (body: any) => body.rule === 'Terminal shell in container')
        .reply(200, { status: 'skipped', code: 'protected-namespace', reason: 'left alone' }),
    );
    const log = memoryLogger();
    const handler = forwarderHandler(forwarder, { env: { ROUTES_FILE: routesFile('fan-out'), POD_NAMESPACE: 'falco-response' }, log });

    // When
    const answer = await handler(kubelessEvent(alert('terminal-shell'), EVENT_ID).event, kubelessContext());
    handler.close();

    // Then
    services.forEach((s) => s.done());
    assert.equal(answer.status, 'done');
    assert.deepEqual((answer.results as any[]).map((r) => [r.status, r.message]), [
      ['skipped', 'left alone'],
      ['skipped', 'left alone'],
      ['skipped', 'left alone'],
    ]);
  });
});

function writeTable(dir: string, table: unknown): string {
  const file = path.join(dir, 'table.json');
  writeFileSync(file, JSON.stringify(table));
  return file;
}
