/**
 * The standalone target's runtime, taken exactly as the generated ConfigMaps hold it, serving every function's
 * bundle (and a probe bundle) under Node 12, Node 14 and the current Node: one table of requests, shaped like what
 * Falcosidekick sends, and the answers Kubeless's runtime gives (shared/PROTOCOLS.md sections 1 and 3).
 */
import { strict as assert } from 'assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import type { Socket } from 'net';
import { tmpdir } from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { bundle } from '../../build/bundle';
import { discoverFunctions } from '../../build/discover';
import { buildAll, ROOT } from '../../build/main';
import { RUNTIME_FILE, STANDALONE_DIR } from '../../build/standalone';
import { ALLOW_UNAUTHENTICATED_ENV } from '../../lib/auth';
import { alertText, TOKEN } from '../helpers/fixtures';
import { MemoryCluster, type ListeningCluster } from '../helpers/memory-cluster';
import {
  connect,
  emulatePod,
  KUBELESS_NODE_VERSIONS,
  kubelessEnv,
  nodeBinaries,
  onLoopback,
  readAnswers,
  request,
  sidekickPost,
  SIDEKICK_EVENT_ID,
  SIDEKICK_NAMESPACE,
  spawnRuntime,
  type HttpAnswer,
  type RuntimeProcess,
  until,
} from '../helpers/runtime-process';

/** What is served: a generated function (a pod action or another kind) or the probe of test/fixtures/runtime/. */
interface Target {
  readonly name: string;
  readonly kind: 'pod-action' | 'other' | 'probe';
}

interface Exchange {
  readonly name: string;
  readonly appliesTo: (target: Target) => boolean;
  /** A POST as Falcosidekick sends it, unless `method` says otherwise. */
  readonly request: {
    readonly method?: 'GET';
    readonly path?: string;
    readonly contentType?: string;
    readonly eventId?: string;
    readonly userAgent?: string;
    readonly body: string;
  };
  readonly expected: (target: Target) => Expected;
}

interface Expected {
  readonly status: number;
  /** The exact body as text, or as JSON (compared parsed, with a JSON content type), or lines it holds. */
  readonly text?: string;
  readonly json?: unknown;
  readonly lines?: readonly string[];
  /** The calls the fake API server receives, `METHOD /path`, in order. */
  readonly api?: readonly string[];
  /** A text the runtime writes on stderr. */
  readonly stderr?: string;
  /** Texts the runtime writes on stdout (its access log). */
  readonly stdout?: readonly string[];
}

const every = () => true;
const podActions = (t: Target) => t.kind === 'pod-action';
const probe = (t: Target) => t.kind === 'probe';

const PROBE_CONTEXT = { 'function-name': 'handler', timeout: 30, runtime: 'nodejs14', 'memory-limit': '128Mi' };
const probeEcho = (dataType: string, data: unknown) => ({
  dataType,
  data,
  eventId: SIDEKICK_EVENT_ID,
  eventType: 'falco',
  eventNamespace: SIDEKICK_NAMESPACE,
  context: PROBE_CONTEXT,
});
const KUBECON = '/api/v1/namespaces/default/pods/kubecon';
const ALPINE = '/api/v1/namespaces/default/pods/alpine';
const INTERNAL_ERROR: Expected = { status: 500, text: 'Internal Server Error' };
const BOUNDARY = 'falco-response-boundary';
/** A form whose one part is a whole Falco alert: Kubeless's runtime never reads it. */
const MULTIPART_ALERT =
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="alert"\r\nContent-Type: application/json\r\n\r\n` +
  `${alertText('terminal-shell')}\r\n--${BOUNDARY}--\r\n`;

/** The k8saudit-eks fixture about another object, cluster-wide. */
function k8sAuditAlert(resource: string, name: string): string {
  const alert = JSON.parse(alertText('k8saudit-serviceaccount-created')) as { output_fields: Record<string, unknown> };
  alert.output_fields = { 'ka.target.resource': resource, 'ka.target.name': name, 'ka.verb': 'create' };
  return JSON.stringify(alert);
}

/** The answer to the terminal-shell fixture, whichever way its body is delivered: the cluster has no pod kubecon. */
const kubeconAlreadyGone = () => ({
  status: 200,
  json: {
    status: 'skipped',
    code: 'pod-gone',
    reason: "the pod 'kubecon' in the namespace 'default' is already gone",
    target: { namespace: 'default', pod: 'kubecon' },
  },
  api: [`GET ${KUBECON}`],
});

/** The one table, for every Node version. */
const EXCHANGES: readonly Exchange[] = [
  {
    name: 'GET /healthz',
    appliesTo: every,
    request: { method: 'GET', path: '/healthz', body: '' },
    expected: () => ({ status: 200, text: 'OK' }),
  },
  {
    name: 'a Falco alert as application/json',
    appliesTo: podActions,
    request: { body: alertText('terminal-shell') },
    expected: kubeconAlreadyGone,
  },
  {
    name: 'the same alert as text/plain (data arrives as a string)',
    appliesTo: podActions,
    // Another alert (its own event-id): the same event-id and bytes again would be answered as a repeat (lib/repeats.ts).
    request: { contentType: 'text/plain', eventId: '5d0c8e2a-7b1f-4c3e-8a9d-6e4f2b1c0a9e', body: alertText('terminal-shell') },
    expected: kubeconAlreadyGone,
  },
  {
    name: "an old Falcosidekick's alert about a pod that opted out",
    appliesTo: podActions,
    request: { body: alertText('terminal-shell-old-sidekick') },
    expected: () => ({
      status: 200,
      json: {
        status: 'skipped',
        code: 'opted-out',
        reason: "the pod 'alpine' in the namespace 'default' opted out with falco-response.io/ignore=true",
        target: { namespace: 'default', pod: 'alpine' },
      },
      api: [`GET ${ALPINE}`],
    }),
  },
  {
    // Checked names percent-encoded, times parsed, on every Node: the ClusterRoleBinding is not there.
    name: 'a k8s_audit alert about a ClusterRoleBinding named with a colon (an audit-object action)',
    appliesTo: (t) => t.name === 'delete-object',
    request: { body: k8sAuditAlert('clusterrolebindings', 'ops:backdoor') },
    expected: () => ({
      status: 200,
      json: {
        status: 'skipped',
        code: 'object-gone',
        reason: "the ClusterRoleBinding 'ops:backdoor' is already gone",
        target: { resource: 'clusterrolebindings', name: 'ops:backdoor' },
      },
      api: ['GET /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/ops%3Abackdoor'],
    }),
  },
  {
    name: "Falcosidekick's test event",
    appliesTo: podActions,
    request: { body: alertText('sidekick-test-event') },
    expected: () => ({ status: 200, json: { status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: nothing to do" }, api: [] }),
  },
  {
    name: 'an empty body',
    appliesTo: podActions,
    request: { body: '' },
    expected: () => ({ status: 400, json: { status: 'invalid', error: 'the request body is empty: expected a Falco alert as JSON' }, api: [] }),
  },
  {
    name: 'invalid JSON (the runtime answers before the function runs)',
    appliesTo: every,
    request: { body: '{"rule": "Terminal shell in container",' },
    expected: () => ({ ...INTERNAL_ERROR, api: [] }),
  },
  {
    name: 'an object as application/json reaches the function as an object, with the event headers',
    appliesTo: probe,
    request: { body: '{"rule":"Test rule","output_fields":{"proc.tty":0}}' },
    expected: () => ({ status: 200, json: probeEcho('object', { rule: 'Test rule', output_fields: { 'proc.tty': 0 } }) }),
  },
  {
    name: 'a text/plain body reaches the function as a string',
    appliesTo: probe,
    request: { contentType: 'text/plain', body: '{"rule":"Test rule"}' },
    expected: () => ({ status: 200, json: probeEcho('string', '{"rule":"Test rule"}') }),
  },
  {
    name: 'an empty body reaches the function as {}',
    appliesTo: probe,
    request: { body: '' },
    expected: () => ({ status: 200, json: probeEcho('object', {}) }),
  },
  {
    name: "the body's very bytes stay on the request (request.body, as Express's raw parser keeps them): big integers intact",
    appliesTo: probe,
    request: { path: '/raw-body', body: '{"output_fields":{"evt.time":1685022245478445995}}\n' },
    expected: () => ({ status: 200, text: 'bytes: {"output_fields":{"evt.time":1685022245478445995}}\n' }),
  },
  {
    name: 'a status the function sets, with its string as the body',
    appliesTo: probe,
    request: { path: '/status-202', body: '{}' },
    expected: () => ({ status: 202, text: 'accepted' }),
  },
  {
    name: 'nothing returned: an empty 200',
    appliesTo: probe,
    request: { path: '/nothing', body: '{}' },
    expected: () => ({ status: 200, text: '' }),
  },
  {
    name: 'an error thrown by the function',
    appliesTo: probe,
    request: { path: '/throw', body: '{}' },
    expected: () => ({ ...INTERNAL_ERROR, stderr: 'Error: probe: thrown on purpose' }),
  },
  {
    name: 'an error whose message carries alert text: written escaped, its next line indented, never a line of its own',
    appliesTo: probe,
    request: { path: '/throw-hostile', body: '{}' },
    expected: () => ({
      ...INTERNAL_ERROR,
      stderr: 'Error: probe: rule \\u001b[2J\\u009b\\u202eevil\n  {"level":"info","message":"all clear"}',
    }),
  },
  {
    name: 'a promise the function rejects',
    appliesTo: probe,
    request: { path: '/reject', body: '{}' },
    expected: () => ({ ...INTERNAL_ERROR, stderr: 'Error: probe: rejected on purpose' }),
  },
  {
    name: 'a promise rejected with a value that cannot even be written out (no prototype)',
    appliesTo: probe,
    request: { path: '/reject-bare', body: '{}' },
    expected: () => ({ ...INTERNAL_ERROR, stderr: 'a thrown value that cannot be written out ([object Object])' }),
  },
  {
    // Kubeless's parsers all skip multipart/* and body-parser leaves `req.body = {}`: the function gets {} as data.
    name: 'a multipart/form-data body (even one holding an alert) reaches the function as {}, as in Kubeless',
    appliesTo: probe,
    request: { contentType: `multipart/form-data; boundary=${BOUNDARY}`, body: MULTIPART_ALERT },
    expected: () => ({ status: 200, json: probeEcho('object', {}) }),
  },
  {
    name: 'a multipart/form-data body does not stay on the request as bytes (Kubeless keeps {})',
    appliesTo: probe,
    request: { path: '/raw-body', contentType: `multipart/form-data; boundary=${BOUNDARY}`, body: MULTIPART_ALERT },
    expected: () => ({ status: 200, text: 'not bytes: object' }),
  },
  {
    name: 'a multipart/form-data alert is no alert: the same 400 as an empty body, as under Kubeless',
    appliesTo: podActions,
    request: { contentType: `multipart/form-data; boundary=${BOUNDARY}`, body: MULTIPART_ALERT },
    expected: () => ({ status: 400, json: { status: 'invalid', error: 'the request body is empty: expected a Falco alert as JSON' }, api: [] }),
  },
  {
    name: 'the access log escapes quotes, backslashes and control characters of the URL and the User-Agent',
    appliesTo: probe,
    request: { path: '/log"line\\', userAgent: 'x" "y\\ \u009b', body: '{}' },
    expected: () => ({ status: 200, stdout: ['"POST /log\\"line\\\\ HTTP/1.1" 200 ', '"x\\" \\"y\\\\ \\u009b"\n'] }),
  },
  {
    name: 'GET /metrics',
    appliesTo: every,
    request: { method: 'GET', path: '/metrics', body: '' },
    expected: () => ({
      status: 200,
      lines: [
        '# TYPE function_duration_seconds histogram',
        '# TYPE function_calls_total counter',
        '# TYPE function_failures_total counter',
      ],
    }),
  },
];

/**
 * The runtime's own bounds in this table, low so that an attack is cut in a second or two (README: the runtime's
 * limits); the requests of EXCHANGES each open their own connection and are far within them.
 */
const BOUNDS = { REQ_HEADERS_TIMEOUT: '2', REQ_BODY_TIMEOUT: '1', MAX_CONNECTIONS: '32' };
const BODY_LIMIT = 1024 * 1024; // REQ_MB_LIMIT's default, 1

/** What any pod may send to a function's port that no HTTP client library would: each must leave the runtime up. */
interface Attack {
  readonly name: string;
  readonly appliesTo: (target: Target) => boolean;
  /** Attacks the runtime and asserts what it answers; afterwards the table checks /healthz and the process. */
  readonly run: (runtime: RuntimeProcess, version: string) => Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const HEAD = 'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nUser-Agent: attacker\r\n';
const figure = (version: string, text: string) => process.stdout.write(`      [bounds] Node ${version}: ${text}\n`);

/** Writes pieces until `stop()` holds, the server closes or `max` bytes are written; returns the bytes written. */
async function pump(socket: Socket, piece: Buffer, stop: () => boolean, max: number, onSent: (sent: number) => void = () => undefined): Promise<number> {
  let sent = 0;
  while (!stop() && !socket.destroyed && socket.writable && sent < max) {
    sent += piece.length;
    onSent(sent);
    if (!socket.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
  return sent;
}

const ATTACKS: readonly Attack[] = [
  {
    name: 'a body cut off mid-way (the client disconnects): nothing is called, the runtime says so and lives on',
    appliesTo: every,
    run: async (runtime) => {
      const socket = await connect(runtime.port);
      socket.on('error', () => undefined);
      socket.write(`${HEAD}Content-Length: 1000\r\n\r\n${'x'.repeat(100)}`);
      await sleep(200);
      socket.destroy();
      const line = '"message":"the client went away after 100 bytes of a request body (aborted): the function was not called","method":"POST","url":"/"';
      await until(() => runtime.stderr().includes(line), `stderr holds ${line}:\n${runtime.stderr()}`);
    },
  },
  {
    name: 'a body sent a byte at a time: 408 once REQ_BODY_TIMEOUT has passed, and the connection closed',
    appliesTo: probe,
    run: async (runtime, version) => {
      const socket = await connect(runtime.port);
      const { answers, isClosed } = readAnswers(socket);
      const started = Date.now();
      socket.write(`${HEAD}Content-Length: 1000\r\n\r\n`);
      const trickle = setInterval(() => socket.writable && socket.write('x'), 100);
      await until(isClosed, 'the server closes the connection');
      clearInterval(trickle);
      figure(version, `a slow body was cut after ${((Date.now() - started) / 1000).toFixed(2)} s (REQ_BODY_TIMEOUT ${BOUNDS.REQ_BODY_TIMEOUT} s)`);
      assert.deepEqual(answers.map((a) => [a.status, a.body]), [[408, 'Request Timeout']]);
      assert.match(answers[0].head, /^connection: close$/im);
    },
  },
  {
    name: 'headers sent a byte at a time: the connection closed once REQ_HEADERS_TIMEOUT has passed',
    appliesTo: probe,
    run: async (runtime, version) => {
      const socket = await connect(runtime.port);
      socket.on('error', () => undefined);
      let isClosed = false;
      socket.on('close', () => (isClosed = true));
      const started = Date.now();
      const text = `${HEAD}X-Slow: ${'y'.repeat(1000)}\r\n\r\n`;
      let at = 0;
      const trickle = setInterval(() => socket.writable && at < text.length && socket.write(text[at++]), 50);
      await until(() => isClosed, 'the server closes the connection');
      clearInterval(trickle);
      figure(version, `slow headers were cut after ${((Date.now() - started) / 1000).toFixed(2)} s (REQ_HEADERS_TIMEOUT ${BOUNDS.REQ_HEADERS_TIMEOUT} s)`);
    },
  },
  {
    name: 'an endless chunked body: 413 as soon as it passes REQ_MB_LIMIT, the connection closed, the rest never read',
    appliesTo: every,
    run: async (runtime, version) => {
      const socket = await connect(runtime.port);
      const { answers, isClosed } = readAnswers(socket);
      socket.write(`${HEAD}Transfer-Encoding: chunked\r\n\r\n`);
      const piece = Buffer.from(`10000\r\n${'x'.repeat(0x10000)}\r\n`);
      let passedLimitAt = 0;
      const sent = await pump(socket, piece, () => answers.length > 0, 256 * BODY_LIMIT, (n) => {
        if (passedLimitAt === 0 && n > BODY_LIMIT) passedLimitAt = Date.now();
      });
      await until(isClosed, 'the server closes the connection');
      const latency = answers.length > 0 ? `${answers[0].receivedAt - passedLimitAt} ms after the limit was passed` : 'no answer';
      figure(version, `an endless body got its 413 after ${(sent / BODY_LIMIT).toFixed(1)} MiB sent, ${latency}`);
      assert.deepEqual(answers.map((a) => [a.status, a.body]), [[413, 'Payload Too Large']]);
      assert.match(answers[0].head, /^connection: close$/im);
      assert.ok(sent < 64 * BODY_LIMIT, `the 413 came after ${sent} bytes of the body`);
    },
  },
  {
    name: 'a body declared past REQ_MB_LIMIT: 413 before the body is sent, not after it is drained',
    appliesTo: probe,
    run: async (runtime, version) => {
      const total = 64 * BODY_LIMIT;
      const socket = await connect(runtime.port);
      const { answers, isClosed } = readAnswers(socket);
      socket.write(`${HEAD}Content-Length: ${total}\r\n\r\n`);
      const sent = await pump(socket, Buffer.alloc(0x10000, 'x'), () => answers.length > 0, total);
      await until(isClosed, 'the server closes the connection');
      figure(version, `a declared ${total / BODY_LIMIT} MiB body got its 413 after ${(sent / BODY_LIMIT).toFixed(1)} MiB sent`);
      assert.deepEqual(answers.map((a) => [a.status, a.body]), [[413, 'Payload Too Large']]);
      assert.ok(sent < total, 'the 413 came only once the whole body was sent');
    },
  },
  {
    name: 'a flood of idle connections past MAX_CONNECTIONS: the oldest idle ones are closed, and said so',
    appliesTo: probe,
    run: async (runtime, version) => {
      const count = 3 * Number(BOUNDS.MAX_CONNECTIONS);
      let closedByServer = 0;
      const sockets = await Promise.all(
        Array.from({ length: count }, async () => {
          const socket = await connect(runtime.port);
          socket.on('error', () => undefined);
          socket.on('close', () => closedByServer++);
          return socket;
        }),
      );
      await until(() => closedByServer >= count - Number(BOUNDS.MAX_CONNECTIONS), `${count - Number(BOUNDS.MAX_CONNECTIONS)} connections closed (${closedByServer} so far)`);
      figure(version, `${count} idle connections: ${closedByServer} closed by the runtime`);
      // said once, its repeats counted for a line of their own ten seconds later: not one line per connection
      const warning = `"message":"${BOUNDS.MAX_CONNECTIONS} connections are open (MAX_CONNECTIONS): the oldest with no request at work is closed to take a new one"`;
      await runtime.stderrIncludes(warning);
      assert.equal(runtime.stderr().split(warning).length - 1, 1, runtime.stderr());
      const health = await request(runtime.port, { method: 'GET', path: '/healthz' });
      for (const socket of sockets) socket.destroy();
      assert.equal(health.status, 200);
    },
  },
];

function send(port: number, exchange: Exchange): Promise<HttpAnswer> {
  const { method, path: requestPath = '/', contentType, eventId, userAgent, body } = exchange.request;
  if (method === 'GET') return request(port, { method, path: requestPath });
  if (userAgent !== undefined) {
    return request(port, { method: 'POST', path: requestPath, headers: { 'Content-Type': 'application/json', 'User-Agent': userAgent }, body });
  }
  return sidekickPost(port, body, { path: requestPath, ...(contentType === undefined ? {} : { contentType }), ...(eventId === undefined ? {} : { eventId }) });
}

function kindOf(descriptor: unknown): Target['kind'] {
  return (descriptor as { kind?: unknown }).kind === 'pod-action' ? 'pod-action' : 'other';
}

const TARGETS: readonly Target[] = [
  ...discoverFunctions(ROOT).map((f) => ({ name: f.name, kind: kindOf(f.descriptor) })),
  { name: 'probe', kind: 'probe' },
];
const NODE_VERSIONS = [...KUBELESS_NODE_VERSIONS, 'current'] as const;

describe('the standalone runtime from the generated ConfigMaps, on Node 12, 14 and current (shared/PROTOCOLS.md sections 1, 3)', function () {
  this.timeout(120000);
  let scratch: string;
  // No pod kubecon; the pod alpine opted out of every action.
  const cluster = new MemoryCluster().addPod('default', 'alpine', { labels: { 'falco-response.io/ignore': 'true' } });
  let api: ListeningCluster;
  const runtimeFiles = new Map<string, string>();
  const served = new Map<string, { program: string; env: Record<string, string> }>();

  before(async () => {
    nodeBinaries();
    scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-runtime-'));
    api = await cluster.listen();
    const kubeconfig = api.writeKubeconfig(path.join(scratch, 'kubeconfig.json'));

    const result = await buildAll(ROOT);
    for (const target of TARGETS.filter((t) => t.kind !== 'probe')) {
      const objects = parseAllDocuments(result.manifests.get(`${STANDALONE_DIR}/${target.name}.yaml`)!).map((d) => d.toJS() as unknown);
      const configMap = objects.find((o: any) => o.kind === 'ConfigMap' && o.metadata.name === target.name) as { data: Record<string, string> };
      runtimeFiles.set(target.name, configMap.data[RUNTIME_FILE]);
      const pod = emulatePod(objects, path.join(scratch, target.name));
      // Every action answers the fixtures' rule here, whatever its default RULES.
      const rules = 'RULES' in pod.env ? { RULES: '*' } : {};
      // The exchanges are the runtime's protocol, without the shared secret: a function that requires it (delete-object)
      // runs as an operator who opted out would (its refusal without it: test/unit/delete-object.test.ts).
      const open = ALLOW_UNAUTHENTICATED_ENV in pod.env ? { [ALLOW_UNAUTHENTICATED_ENV]: 'true' } : {};
      served.set(target.name, { program: pod.program, env: onLoopback({ ...pod.env, ...rules, ...open, ...BOUNDS, KUBECONFIG: kubeconfig }) });
    }

    // The probe: bundled like a function, served by the runtime file of the first generated ConfigMap.
    const probeDir = path.join(scratch, 'probe', 'kubeless');
    mkdirSync(probeDir, { recursive: true });
    const probeBundle = await bundle('probe', path.join(ROOT, 'test', 'fixtures', 'runtime', 'probe.ts'), '/* runtime test probe */');
    writeFileSync(path.join(probeDir, 'probe.js'), probeBundle.code);
    writeFileSync(path.join(probeDir, RUNTIME_FILE), [...runtimeFiles.values()][0]);
    served.set('probe', { program: path.join(probeDir, RUNTIME_FILE), env: { ...kubelessEnv('probe', probeDir), ...BOUNDS } });
  });

  after(async () => {
    await api?.close();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  it('finds the same runtime file, the build\'s runtime bundle, in every generated ConfigMap', async () => {
    const result = await buildAll(ROOT);
    for (const [name, file] of runtimeFiles) assert.equal(file, result.runtime.code, `${name}'s ConfigMap`);
    assert.ok(runtimeFiles.size > 0);
  });

  for (const version of NODE_VERSIONS) {
    describe(`under Node ${version}`, () => {
      for (const target of TARGETS) {
        describe(`serving ${target.name}`, () => {
          let runtime: RuntimeProcess | undefined;

          before(async () => {
            const node = nodeBinaries().find((n) => (version === 'current' ? n.path === process.execPath : n.version === `v${version}`));
            assert.ok(node !== undefined, `no Node ${version}`);
            const { program, env } = served.get(target.name)!;
            runtime = await spawnRuntime({ node: node.path, runtimeFile: program, env });
            cluster.take();
          });

          after(async () => {
            await runtime?.stop('SIGKILL'); // only if the SIGTERM test did not end it
          });

          for (const exchange of EXCHANGES.filter((e) => e.appliesTo(target))) {
            const expected = exchange.expected(target);
            it(`${exchange.name}: ${expected.status}`, async () => {
              // Given the runtime listening, When Falcosidekick (or the kubelet) sends the request
              const answer = await send(runtime!.port, exchange);
              const calls = cluster.take();

              // Then the answer is exactly the expected one
              assert.equal(answer.status, expected.status, `body: ${answer.body}`);
              if (expected.text !== undefined) assert.equal(answer.body, expected.text);
              if (expected.json !== undefined) {
                assert.match(String(answer.headers['content-type']), /^application\/json/);
                assert.deepEqual(JSON.parse(answer.body), expected.json);
              }
              for (const line of expected.lines ?? []) assert.ok(answer.body.split('\n').includes(line), `no line ${line} in\n${answer.body}`);
              if (expected.api !== undefined) {
                assert.deepEqual(calls.map((c) => `${c.method} ${c.path}`), expected.api);
                for (const call of calls) assert.equal(call.authorization, `Bearer ${TOKEN}`);
              }
              if (expected.stderr !== undefined) await runtime!.stderrIncludes(expected.stderr);
              for (const text of expected.stdout ?? []) await until(() => runtime!.stdout().includes(text), `stdout holds ${text}:\n${runtime!.stdout()}`);
            });
          }

          for (const attack of ATTACKS.filter((a) => a.appliesTo(target))) {
            it(`${attack.name}`, async () => {
              // Given the runtime listening, When the attack comes, Then it is answered as the row says
              await attack.run(runtime!, version);

              // and the runtime is still up and answers the kubelet's probe
              assert.equal(runtime!.child.exitCode, null, `the runtime exited; stderr: ${runtime!.stderr()}`);
              const health = await request(runtime!.port, { method: 'GET', path: '/healthz' });
              assert.deepEqual([health.status, health.body], [200, 'OK']);
              cluster.take();
            });
          }

          it('closes on SIGTERM with exit code 0', async () => {
            const end = await runtime!.stop('SIGTERM');
            assert.deepEqual(end, { code: 0, signal: null });
          });
        });
      }
    });
  }
});
