import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import * as http from 'http';
import * as v8 from 'v8';
import * as vm from 'vm';
import type { AddressInfo } from 'net';
import { tmpdir } from 'os';
import * as path from 'path';
import nock from 'nock';
import deletePod from '../../functions/delete-pod/action';
import labelPod from '../../functions/label-pod/action';
import forwarder from '../../functions/forwarder/router';
import { forwarderHandler } from '../../lib/router/runner';
import { memoryLogger } from '../../lib/log';
import { REPEAT_MEMORY_BYTES, RepeatMemory, repeatKey } from '../../lib/repeats';
import type { KubelessHandler } from '../../lib/runner';
import { eventStored, fakeApi, handlerFor, podObject, status } from '../helpers/fake-cluster';
import { alert, alertText, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { MemoryCluster } from '../helpers/memory-cluster';

const POD = '/api/v1/namespaces/default/pods/kubecon';
const EVENTS = '/api/v1/namespaces/default/events';

/** delete-pod's healthy calls for the terminal-shell pod, once each: read it, delete it, record the Event. */
const deletesOnce = (scope: nock.Scope) =>
  scope
    .get(POD)
    .reply(200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }))
    .delete(POD)
    .reply(200, podObject('default', 'kubecon'))
    .post(EVENTS)
    .reply(201, (_uri, body) => eventStored(body));
const EVENT_ID = '0b9a7c1e-5d4f-4e8a-9c2b-7f6e5d4c3b2a';
const DELETED = "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s)";

type Reset = 'before-the-answer' | 'after-the-answer';

/**
 * A pod action behind a minimal Kubeless-like HTTP server on 127.0.0.1 (shared/PROTOCOLS.md section 1: event-id from
 * the header, the parsed body as data, the raw body kept). `reset(n)` says whether to reset the connection of the
 * n-th request, and when: a socket the server (or a proxy) closes after the request went out.
 */
async function serveAction(handler: KubelessHandler, reset: (n: number) => Reset | undefined) {
  const received: string[] = [];
  const running: Promise<unknown>[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const when = reset(received.length);
      received.push(String(req.headers['event-id']));
      const response = {
        statusCode: 200,
        status(code: number) {
          this.statusCode = code;
          return this;
        },
      };
      const event = {
        data: JSON.parse(body.toString('utf8')) as unknown,
        'event-id': req.headers['event-id'],
        'event-type': req.headers['event-type'],
        'event-namespace': req.headers['event-namespace'],
        extensions: { request: { headers: req.headers, body }, response },
      };
      if (when === 'before-the-answer') req.socket.destroy();
      const done = handler(event, kubelessContext()).then((answer) => {
        if (when !== undefined) {
          req.socket.destroy();
          return;
        }
        res.writeHead(response.statusCode, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(answer));
      });
      running.push(done);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    received,
    close: async () => {
      await Promise.all(running);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function alertFor(pod: string): Record<string, any> {
  const a = alert('terminal-shell');
  a.output_fields['k8s.pod.name'] = pod;
  return a;
}

describe('a repeated call gets the first answer, and no new Kubernetes call (lib/repeats.ts)', function () {
  this.timeout(10000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'repeats-'));
    nock.enableNetConnect('127.0.0.1');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    nock.disableNetConnect();
  });

  for (const when of ['before-the-answer', 'after-the-answer'] as const) {
    it(`the forwarder sends an alert again after its kept-alive socket is reset ${when.split('-').join(' ')}: one DELETE, and both answers say deleted`, async () => {
      // Given: delete-pod on a cluster holding two pods, behind a server that resets the socket of the 2nd request
      const cluster = new MemoryCluster().addPod('default', 'warm-up').addPod('default', 'kubecon');
      // In process, no HTTP: the forwarder's sockets can be real ones (nock's interception opens a socket per request,
      // which would hide the kept-alive reuse).
      const { handler: action, log: actionLog } = handlerFor(deletePod, {}, { kube: cluster.kube() });
      const server = await serveAction(action, (n) => (n === 1 ? when : undefined));
      const routes = path.join(dir, 'routes.json');
      writeFileSync(routes, JSON.stringify({ routes: [{ name: 'shell', ruleGlobs: ['*'], actions: ['delete-pod'] }] }));
      const forward = forwarderHandler(forwarder, { env: { ROUTES_FILE: routes, ACTION_ENDPOINTS: JSON.stringify({ 'delete-pod': server.url }) }, log: memoryLogger() });
      try {
        // When: a first alert opens the kept-alive connection, the second goes out on it and is reset
        nock.restore();
        let warmUp;
        let answer;
        try {
          warmUp = await forward(kubelessEvent(alertFor('warm-up'), 'warm-up-event').event, kubelessContext());
          answer = await forward(kubelessEvent(alertFor('kubecon'), EVENT_ID).event, kubelessContext());
        } finally {
          nock.activate();
        }

        // Then: the action was called twice with the event-id, and deleted the pod once
        assert.equal(warmUp.status, 'done');
        assert.deepEqual(server.received, ['warm-up-event', EVENT_ID, EVENT_ID], 'the forwarder sent it again');
        assert.deepEqual(cluster.take().map((c) => `${c.method} ${c.path}`).slice(3), [`GET ${POD}`, `DELETE ${POD}`, `POST ${EVENTS}`]);
        assert.equal(answer.status, 'done');
        const [report] = answer.results as any[];
        assert.deepEqual([report.status, report.message, report.answer.repeated], ['done', DELETED, true]);
        const lines = actionLog.lines.filter((l) => l.eventId === EVENT_ID).map((l) => [l.outcome, l.result, l.repeated]);
        assert.deepEqual(lines, [
          ['done', DELETED, undefined],
          ['done', DELETED, true],
        ]);
      } finally {
        forward.close();
        await server.close();
      }
    });
  }

  it('answers a repeat after the answer with the same answer, marked, from memory; strict nock sees one of each call', async () => {
    // Given
    const api = deletesOnce(fakeApi());
    const { handler, log } = handlerFor(deletePod);

    // When
    const first = kubelessEvent(alert('terminal-shell'), EVENT_ID);
    const again = kubelessEvent(alert('terminal-shell'), EVENT_ID);
    const firstAnswer = await handler(first.event, kubelessContext());
    const againAnswer = await handler(again.event, kubelessContext());

    // Then
    api.done();
    assert.deepEqual(againAnswer, { ...firstAnswer, repeated: true });
    assert.equal(again.response.statusCode, 200);
    assert.equal(firstAnswer.message, DELETED);
    assert.deepEqual(
      log.lines.map((l) => [l.eventId, l.outcome, l.rule, l.repeated]),
      [
        [EVENT_ID, 'done', 'Terminal shell in container', undefined],
        [EVENT_ID, 'done', 'Terminal shell in container', true],
      ],
    );
  });

  it('takes the same event-id with another body for another call', async () => {
    const api = deletesOnce(fakeApi())
      .get('/api/v1/namespaces/default/pods/other')
      .reply(404, status(404, 'NotFound', 'pods "other" not found'));
    const { handler } = handlerFor(deletePod);

    const first = await handler(kubelessEvent(alert('terminal-shell'), EVENT_ID).event, kubelessContext());
    const other = await handler(kubelessEvent(alertFor('other'), EVENT_ID).event, kubelessContext());

    api.done();
    assert.equal(first.status, 'done');
    assert.deepEqual([other.status, other.code, other.repeated], ['skipped', 'pod-gone', undefined]);
  });

  it('tries again after a failure: a failed answer is not remembered', async () => {
    const forbidden = status(403, 'Forbidden', 'pods "kubecon" is forbidden');
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }))
      .delete(POD)
      .reply(403, forbidden);
    deletesOnce(api);
    const { handler } = handlerFor(deletePod);

    const failed = await handler(kubelessEvent(alert('terminal-shell'), EVENT_ID).event, kubelessContext());
    const retried = await handler(kubelessEvent(alert('terminal-shell'), EVENT_ID).event, kubelessContext());

    api.done();
    assert.equal(failed.status, 'failed');
    assert.deepEqual([retried.status, retried.message, retried.repeated], ['done', DELETED, undefined]);
  });

  it('never answers an unauthorized caller from memory, and an unauthorized call is not remembered', async () => {
    const api = deletesOnce(fakeApi());
    const { handler } = handlerFor(deletePod, { INBOUND_SECRET: 'the-secret' });
    const call = async (authorization: string | undefined) => {
      const { event, response } = kubelessEvent(alert('terminal-shell'), EVENT_ID);
      const headers = authorization === undefined ? {} : { authorization };
      const answer = await handler({ ...event, extensions: { ...event.extensions, request: { headers } } }, kubelessContext());
      return [response.statusCode, answer.status, answer.repeated];
    };

    const answers = [await call(undefined), await call('Bearer the-secret'), await call('Bearer guessed'), await call('Bearer the-secret')];

    api.done();
    assert.deepEqual(answers, [
      [401, 'unauthorized', undefined],
      [200, 'done', undefined],
      [401, 'unauthorized', undefined],
      [200, 'done', true],
    ]);
  });

  it('keys a call by its event-id and the very bytes of its body when the runtime kept them', () => {
    const text = alertText('terminal-shell');
    const withBytes = (bytes: string, eventId: string | undefined = EVENT_ID) => ({
      data: JSON.parse(bytes) as unknown,
      'event-id': eventId,
      extensions: { request: { body: Buffer.from(bytes, 'utf8') } },
    });
    assert.equal(repeatKey(withBytes(text)), repeatKey(withBytes(text)));
    assert.notEqual(repeatKey(withBytes(text)), repeatKey(withBytes(`${text} `)), 'other bytes, another call');
    assert.notEqual(repeatKey(withBytes(text)), repeatKey(withBytes(text, `${EVENT_ID}x`)));
    assert.equal(repeatKey({ ...withBytes(text), 'event-id': undefined }), undefined, 'no event-id: never a repeat');
    assert.equal(repeatKey(withBytes(text, '')), undefined);
    assert.equal(repeatKey({ data: { a: 1 }, 'event-id': 'e' }), repeatKey({ data: { a: 1 }, 'event-id': 'e' }), 'parsed data when no bytes');
    assert.notEqual(repeatKey({ data: '1', 'event-id': 'e:1' }), repeatKey({ data: '1:1', 'event-id': 'e' }), 'no cut of one is the other');
  });

  describe('what a remembered call keeps: its answer and the few fields of its log line, never its body', () => {
    v8.setFlagsFromString('--expose_gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const MB = 1024 * 1024;
    /** The heap still in use after `calls` were handled and remembered, the garbage collected. */
    async function retainedBy(handler: KubelessHandler, calls: number, data: (i: number) => unknown): Promise<number> {
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < calls; i++) {
        const answer = await handler(kubelessEvent(data(i), `event-${i}`).event, kubelessContext());
        assert.ok(answer.status === 'skipped' || answer.status === 'done', JSON.stringify(answer).slice(0, 300));
      }
      gc();
      return process.memoryUsage().heapUsed - before;
    }

    it('100 remembered alerts of 1 MB each (skipped: rule not selected) hold less than 10 MB, not their 100 MB', async () => {
      // Given: delete-pod, which answers only its rule and skips these: a skip is remembered
      const { handler } = handlerFor(deletePod, {}, { kube: new MemoryCluster().kube() });
      const big = (i: number) => ({ ...alert('terminal-shell'), rule: `Another rule ${i}`, output: 'x'.repeat(MB) });

      // When
      const retained = await retainedBy(handler, 100, big);

      // Then
      assert.ok(retained < 10 * MB, `${(retained / MB).toFixed(1)} MB retained`);
    });

    it('label-pod in dry run, 64 KiB of output each: the remembered answers stay within REPEAT_MEMORY_BYTES', async function () {
      // 1000 calls of 80 KB take 4-10 s on a loaded machine: a bound far above that, to catch a hang only.
      this.timeout(60_000);
      // Given: a dry-run answer carries the patch it would write, the output annotation in it
      const cluster = new MemoryCluster();
      for (let i = 0; i < 1000; i++) cluster.addPod('default', `pod-${i}`);
      const { handler } = handlerFor(labelPod, { DRY_RUN: 'true', OUTPUT_ANNOTATION_MAX_BYTES: '65536' }, { kube: cluster.kube() });
      const big = (i: number) => {
        const a = alertFor(`pod-${i}`);
        a.output = `${i} ${'\u00e9'.repeat(40000)}`; // two bytes each in UTF-8, and two in the heap: cut to 64 KiB
        return a;
      };

      // When
      const retained = await retainedBy(handler, 1000, big);

      // Then: 1000 answers of 64 KiB each would be 64 MiB
      assert.ok(retained < REPEAT_MEMORY_BYTES * 2 + 8 * MB, `${(retained / MB).toFixed(1)} MB retained`);
    });
  });

  describe('RepeatMemory', () => {
    const keepAll = () => true;

    it('shares the answer of a call still running with its repeats, and runs the work once', async () => {
      const memory = new RepeatMemory<string>();
      let runs = 0;
      let finish!: (answer: string) => void;
      const work = () => {
        runs++;
        return new Promise<string>((resolve) => (finish = resolve));
      };
      const first = memory.once('k', work, keepAll);
      const second = memory.once('k', work, keepAll);
      finish('answer');
      assert.deepEqual(await Promise.all([first, second]), [
        { answer: 'answer', repeated: false },
        { answer: 'answer', repeated: true },
      ]);
      assert.equal(runs, 1);
    });

    it('holds at most maxEntries answers, forgetting the oldest first', async () => {
      let clock = 0;
      const memory = new RepeatMemory<string>({ maxEntries: 3, now: () => clock });
      const answeredAt = new Map<string, number>();
      for (const key of ['a', 'b', 'c', 'd']) {
        clock += 10;
        await memory.once(key, () => Promise.resolve(`first ${key}`), keepAll);
        answeredAt.set(key, clock);
      }
      assert.equal(memory.size, 3);
      assert.deepEqual(await memory.once('a', () => Promise.resolve('second a'), keepAll), { answer: 'second a', repeated: false });
      assert.deepEqual(await memory.once('d', () => Promise.resolve('second d'), keepAll), { answer: 'first d', repeated: true, answeredAt: answeredAt.get('d') });
      assert.equal(memory.size, 3);
    });

    it('holds answers weighing at most maxBytes together, forgetting the oldest first, and never one heavier alone', async () => {
      const memory = new RepeatMemory<string>({ maxBytes: 10, weigh: (a) => a.length });
      for (const key of ['a', 'b', 'c']) await memory.once(key, () => Promise.resolve(`${key}1234`), keepAll);
      assert.equal(memory.size, 2, '3 answers of 5 are 15');
      assert.deepEqual(await memory.once('a', () => Promise.resolve('a again'), keepAll), { answer: 'a again', repeated: false });
      await memory.once('heavy', () => Promise.resolve('x'.repeat(11)), keepAll);
      assert.deepEqual(await memory.once('heavy', () => Promise.resolve('light'), keepAll), { answer: 'light', repeated: false });
    });

    it('forgets an answer after maxAgeMs', async () => {
      let clock = 0;
      const memory = new RepeatMemory<string>({ maxAgeMs: 1000, now: () => clock });
      await memory.once('k', () => Promise.resolve('first'), keepAll);
      clock = 999;
      assert.deepEqual(await memory.once('k', () => Promise.resolve('second'), keepAll), { answer: 'first', repeated: true, answeredAt: 0 }, 'when it was answered, not when asked again');
      clock = 1000;
      assert.deepEqual(await memory.once('k', () => Promise.resolve('third'), keepAll), { answer: 'third', repeated: false });
      assert.equal(memory.size, 1);
    });

    it('keeps only what `keep` accepts', async () => {
      const memory = new RepeatMemory<string>();
      await memory.once('k', () => Promise.resolve('failed'), (a) => a !== 'failed');
      assert.equal(memory.size, 0);
      assert.deepEqual(await memory.once('k', () => Promise.resolve('done'), (a) => a !== 'failed'), { answer: 'done', repeated: false });
    });
  });
});
