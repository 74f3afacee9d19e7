/**
 * `npm run bench` itself: it writes the tracked bench/results.json only when told to (a run to look at figures leaves
 * git clean), and its sections measure actions that really act. The figures are printed, never asserted.
 */
import { strict as assert } from 'assert';
import * as http from 'http';
import nock from 'nock';
import type { AddressInfo } from 'net';
import * as path from 'path';
import { callsBetween, parseRequestCounts } from '../../bench/lib/cluster';
import { KubelessOutput } from '../../bench/lib/sidekick-output';
import { measureForwarder } from '../../bench/forwarder';
import { parseOptions, RESULTS_FILE, resultFiles } from '../../bench/main';
import { handlerSection } from '../../bench/sections/handler';
import { stormComposition } from '../../bench/sections/storm';

describe('npm run bench: which files a run writes', () => {
  it('a full run writes no file unless told to (it used to rewrite bench/results.json every time)', () => {
    assert.deepEqual(resultFiles(parseOptions([])), []);
    assert.deepEqual(resultFiles(parseOptions(['--quick', '--json'])), []);
  });

  it('--write-results writes bench/results.json; --out FILE writes FILE, and both may be given', () => {
    assert.deepEqual(resultFiles(parseOptions(['--write-results'])), [RESULTS_FILE]);
    assert.deepEqual(resultFiles(parseOptions(['--out', 'figures.json'])), [path.resolve('figures.json')]);
    assert.deepEqual(resultFiles(parseOptions(['--out=figures.json', '--write-results'])), [path.resolve('figures.json'), RESULTS_FILE]);
  });

  it('refuses --write-results with --only, which would leave the tracked figures partial', () => {
    assert.throws(() => parseOptions(['--only', 'size', '--write-results']), {
      name: 'UsageError',
      message: '--write-results: only a run of every section writes bench/results.json, so that it stays whole (give --out to keep this one)',
    });
  });
});

describe('npm run bench: the handler section', function () {
  this.timeout(30000);

  it('every pod action acts on every alert against the in-memory cluster (network-isolate failed on a stub that answered a create with the body sent)', async () => {
    // When: a run far too short for figures, long enough for every action's whole path
    const section = await handlerSection({ runs: 1, alertsPerRun: 70, decodesPerRun: 1 }, () => undefined);

    // Then
    assert.equal(section.status, 'done');
    assert.deepEqual((section.details as { answers?: unknown } | undefined)?.answers, { 'capture-evidence': ['200 done'], 'delete-pod': ['200 done'], 'label-pod': ['200 done'], 'network-isolate': ['200 done'] });
  });
});

describe("npm run bench: Falcosidekick's kubeless output, as the sidekick and storm sections drive the functions", function () {
  this.timeout(20000);
  // A function stand-in on loopback, not the cluster: the only connections these tests make.
  before(() => nock.enableNetConnect('127.0.0.1'));
  after(() => nock.disableNetConnect());

  /** A function stand-in on loopback: records each request, answers after `delayMs`. */
  async function recorder(delayMs: number, answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end('{"status":"done"}')) {
    const seen: { headers: http.IncomingHttpHeaders; body: string; at: number }[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const server = http.createServer((req, res) => {
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: seen.length });
        setTimeout(() => {
          inFlight--;
          answer(req, res);
        }, delayMs);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as AddressInfo).port,
      seen,
      mostInFlight: () => mostInFlight,
      close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
    };
  }

  it('sends one call at a time by default, in the order the alerts came, with its headers and the body as given', async () => {
    // Given
    const fn = await recorder(5);
    const output = new KubelessOutput(fn.port);
    try {
      // When: ten alerts at once
      const bodies = Array.from({ length: 10 }, (_, i) => `{"rule":"r${i}"}\n`);
      const deliveries = await Promise.all(bodies.map((b) => output.send(b)));

      // Then
      assert.equal(fn.mostInFlight(), 1);
      assert.equal(output.maxSeenInFlight, 1);
      assert.deepEqual(fn.seen.map((s) => s.body), bodies);
      assert.deepEqual(deliveries.map((d) => d.status), Array(10).fill(200));
      // (Connection is left out: nock's interceptor, loaded by the unit tests, closes the connection Node keeps alive.)
      const headers: http.IncomingHttpHeaders = { ...fn.seen[0].headers };
      const eventId = headers['event-id'];
      delete headers['event-id'];
      delete headers.connection;
      assert.match(String(eventId), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(new Set(fn.seen.map((s) => s.headers['event-id'])).size, 10, 'an event-id per alert');
      assert.deepEqual(headers, {
        'content-type': 'application/json',
        'user-agent': 'Falcosidekick',
        'event-type': 'falco',
        'event-namespace': 'falco-response',
        'accept-encoding': 'gzip',
        'content-length': String(Buffer.byteLength(bodies[0])),
        host: `127.0.0.1:${fn.port}`,
      });
      assert.ok(deliveries.every((d) => d.queuedAt <= d.sentAt && d.sentAt <= d.answeredAt));
    } finally {
      output.close();
      await fn.close();
    }
  });

  it('keeps maxconcurrentrequests calls in flight, never more', async () => {
    const fn = await recorder(20);
    const output = new KubelessOutput(fn.port, 4);
    try {
      await Promise.all(Array.from({ length: 16 }, () => output.send('{}\n')));
      assert.equal(fn.mostInFlight(), 4);
      assert.equal(output.maxSeenInFlight, 4);
    } finally {
      output.close();
      await fn.close();
    }
  });

  it('does not retry: a call cut off is one attempt, reported without a status, and the next alert goes on', async () => {
    // Given: a function that drops the connection of the first call
    let calls = 0;
    const fn = await recorder(0, (req, res) => (++calls === 1 ? req.socket.destroy() : res.end('{}')));
    const output = new KubelessOutput(fn.port);
    try {
      // When
      const [first, second] = await Promise.all([output.send('{"a":1}\n'), output.send('{"a":2}\n')]);

      // Then
      assert.equal(first.status, 0);
      assert.equal(first.error, 'socket hang up');
      assert.equal(second.status, 200);
      assert.equal(calls, 2);
    } finally {
      output.close();
      await fn.close();
    }
  });
});

describe('npm run bench: the storm burst', () => {
  it('spreads the attacks evenly, each on a pod of its own, and gives every noisy pod both repeats and unwanted alerts', () => {
    // When
    const burst = stormComposition({ alerts: 100, attacks: 4, noisyPods: 4 });

    // Then
    assert.equal(burst.length, 100);
    assert.deepEqual(
      burst.flatMap((a, i) => (a.kind === 'attack' ? [`${i} ${a.pod}`] : [])),
      ['12 attack-0', '37 attack-1', '62 attack-2', '87 attack-3'],
    );
    const kindsByPod = new Map<string, Set<string>>();
    for (const a of burst.filter((x) => x.kind !== 'attack')) kindsByPod.set(a.pod, (kindsByPod.get(a.pod) ?? new Set()).add(a.kind));
    assert.deepEqual(
      [...kindsByPod].map(([pod, kinds]) => `${pod}: ${[...kinds].sort().join(', ')}`).sort(),
      ['noisy-0: repeat, unwanted', 'noisy-1: repeat, unwanted', 'noisy-2: repeat, unwanted', 'noisy-3: repeat, unwanted'],
    );
    assert.deepEqual(
      { repeat: burst.filter((a) => a.kind === 'repeat').length, unwanted: burst.filter((a) => a.kind === 'unwanted').length },
      { repeat: 48, unwanted: 48 },
    );
  });
});

describe("npm run bench: the API server's request counters", () => {
  it('counts the calls on pods, events and networkpolicies by verb and code, watches and other resources left out', () => {
    // Given: two snapshots of /metrics as kube-apiserver 1.20 writes it
    const line = (verb: string, resource: string, code: string, n: number, group = '') =>
      `apiserver_request_total{code="${code}",component="apiserver",contentType="application/json",dry_run="",group="${group}",resource="${resource}",scope="resource",subresource="",verb="${verb}",version="v1"} ${n}`;
    const before = parseRequestCounts(
      ['# TYPE apiserver_request_total counter', line('GET', 'pods', '200', 10), line('WATCH', 'pods', '200', 1), line('GET', 'secrets', '200', 5)].join('\n'),
    );
    const after = parseRequestCounts(
      [
        line('GET', 'pods', '200', 17),
        line('PATCH', 'pods', '200', 3),
        line('WATCH', 'pods', '200', 4),
        line('GET', 'secrets', '200', 50),
        line('GET', 'networkpolicies', '200', 2, 'networking.k8s.io'),
        line('POST', 'events', '201', 3),
      ].join('\n'),
    );

    // When
    const calls = callsBetween(before, after);

    // Then
    assert.deepEqual(calls, { total: 15, byKind: { 'GET networkpolicies 200': 2, 'GET pods 200': 7, 'PATCH pods 200': 3, 'POST events 201': 3 } });
  });
});

describe('npm run bench: the options', () => {
  it('knows the sections that drive the functions as Falcosidekick does', () => {
    assert.deepEqual(parseOptions(['--only', 'sidekick,storm']).only, ['sidekick', 'storm']);
  });
});

describe('npm run bench: the forwarder section', function () {
  this.timeout(60000);
  before(() => nock.enableNetConnect('127.0.0.1'));
  after(() => nock.disableNetConnect());

  it('answers every alert 200 at 32 in flight (the forwarder refused the calls past MAX_IN_FLIGHT + MAX_QUEUED with 503)', async () => {
    // When: a burst too short for figures, at the section's highest concurrency
    const result = await measureForwarder({ alerts: 40, concurrencies: [32] });

    // Then
    const forwarded = result.runs.find((r) => r.target === 'forwarder')!;
    assert.deepEqual(forwarded.statuses, { 200: 40 });
    assert.deepEqual(forwarded.invocations, {
      'label-pod': { exactlyOnce: 40, missing: 0, duplicated: 0 },
      'network-isolate': { exactlyOnce: 40, missing: 0, duplicated: 0 },
    });
  });
});
