/**
 * The standalone target's runtime, taken exactly as the generated ConfigMaps hold it, serving every function's
 * bundle (and a probe bundle) under Node 12, Node 14 and the current Node: one table of requests, shaped like what
 * Falcosidekick sends, and the answers Kubeless's runtime gives (shared/PROTOCOLS.md sections 1 and 3).
 */
import { strict as assert } from 'assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { bundle } from '../../build/bundle';
import { discoverFunctions } from '../../build/discover';
import { buildAll, ROOT } from '../../build/main';
import { RUNTIME_FILE, STANDALONE_DIR } from '../../build/standalone';
import { apiStatus, FAKE_API_TOKEN, startFakeApiServer, writeKubeconfig, type FakeApiServer } from '../helpers/fake-api-server';
import { alertText } from '../helpers/fixtures';
import {
  emulatePod,
  KUBELESS_NODE_VERSIONS,
  kubelessEnv,
  nodeBinaries,
  onLoopback,
  request,
  sidekickPost,
  SIDEKICK_EVENT_ID,
  SIDEKICK_NAMESPACE,
  spawnRuntime,
  type HttpAnswer,
  type RuntimeProcess,
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
  readonly request: { readonly method?: 'GET'; readonly path?: string; readonly contentType?: string; readonly eventId?: string; readonly body: string };
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

/** The answer to the terminal-shell fixture, whichever way its body is delivered: the fake API has no pod kubecon. */
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
    name: 'a promise the function rejects',
    appliesTo: probe,
    request: { path: '/reject', body: '{}' },
    expected: () => ({ ...INTERNAL_ERROR, stderr: 'Error: probe: rejected on purpose' }),
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

function send(port: number, exchange: Exchange): Promise<HttpAnswer> {
  const { method, path: requestPath = '/', contentType, eventId, body } = exchange.request;
  if (method === 'GET') return request(port, { method, path: requestPath });
  return sidekickPost(port, body, { path: requestPath, ...(contentType === undefined ? {} : { contentType }), ...(eventId === undefined ? {} : { eventId }) });
}

function kindOf(descriptor: unknown): Target['kind'] {
  return (descriptor as { kind?: unknown }).kind === 'pod-action' ? 'pod-action' : 'other';
}

/** A pod, as the real API server returns it, that opted out of every action. */
const OPTED_OUT_POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'alpine', namespace: 'default', uid: 'uid-alpine', labels: { 'falco-response.io/ignore': 'true' } },
  spec: { containers: [{ name: 'alpine', image: 'alpine' }] },
  status: { phase: 'Running' },
};

const TARGETS: readonly Target[] = [
  ...discoverFunctions(ROOT).map((f) => ({ name: f.name, kind: kindOf(f.descriptor) })),
  { name: 'probe', kind: 'probe' },
];
const NODE_VERSIONS = [...KUBELESS_NODE_VERSIONS, 'current'] as const;

describe('the standalone runtime from the generated ConfigMaps, on Node 12, 14 and current (shared/PROTOCOLS.md sections 1, 3)', function () {
  this.timeout(120000);
  let scratch: string;
  let api: FakeApiServer;
  const runtimeFiles = new Map<string, string>();
  const served = new Map<string, { program: string; env: Record<string, string> }>();

  before(async () => {
    nodeBinaries();
    scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-runtime-'));
    api = await startFakeApiServer({
      [`GET ${KUBECON}`]: { status: 404, body: apiStatus(404, 'NotFound', 'pods "kubecon" not found') },
      [`GET ${ALPINE}`]: { status: 200, body: OPTED_OUT_POD },
    });
    const kubeconfig = path.join(scratch, 'kubeconfig.json');
    writeKubeconfig(kubeconfig, api.url);

    const result = await buildAll(ROOT);
    for (const target of TARGETS.filter((t) => t.kind !== 'probe')) {
      const objects = parseAllDocuments(result.manifests.get(`${STANDALONE_DIR}/${target.name}.yaml`)!).map((d) => d.toJS() as unknown);
      const configMap = objects.find((o: any) => o.kind === 'ConfigMap' && o.metadata.name === target.name) as { data: Record<string, string> };
      runtimeFiles.set(target.name, configMap.data[RUNTIME_FILE]);
      const pod = emulatePod(objects, path.join(scratch, target.name));
      // Every action answers the fixtures' rule here, whatever its default RULES.
      const rules = 'RULES' in pod.env ? { RULES: '*' } : {};
      served.set(target.name, { program: pod.program, env: onLoopback({ ...pod.env, ...rules, KUBECONFIG: kubeconfig }) });
    }

    // The probe: bundled like a function, served by the runtime file of the first generated ConfigMap.
    const probeDir = path.join(scratch, 'probe', 'kubeless');
    mkdirSync(probeDir, { recursive: true });
    const probeBundle = await bundle('probe', path.join(ROOT, 'test', 'fixtures', 'runtime', 'probe.ts'), '/* runtime test probe */');
    writeFileSync(path.join(probeDir, 'probe.js'), probeBundle.code);
    writeFileSync(path.join(probeDir, RUNTIME_FILE), [...runtimeFiles.values()][0]);
    served.set('probe', { program: path.join(probeDir, RUNTIME_FILE), env: kubelessEnv('probe', probeDir) });
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
            api.take();
          });

          after(async () => {
            await runtime?.stop('SIGKILL'); // only if the SIGTERM test did not end it
          });

          for (const exchange of EXCHANGES.filter((e) => e.appliesTo(target))) {
            const expected = exchange.expected(target);
            it(`${exchange.name}: ${expected.status}`, async () => {
              // Given the runtime listening, When Falcosidekick (or the kubelet) sends the request
              const answer = await send(runtime!.port, exchange);
              const calls = api.take();

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
                for (const call of calls) assert.equal(call.authorization, `Bearer ${FAKE_API_TOKEN}`);
              }
              if (expected.stderr !== undefined) await runtime!.stderrIncludes(expected.stderr);
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
