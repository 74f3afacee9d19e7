/**
 * The functions' metrics on `/metrics` (lib/metrics.ts), under Node 12, 14 and the current Node: in our runtime, after
 * its Kubeless-named series; and in the prom-client that Kubeless's Node runtime loads and serves, found as
 * `require.main.require('prom-client')` finds it. Kubeless's runtime itself (kubeless.js, not on the npm registry) is
 * not run: a main program stands in for it, with prom-client 10.2.3 from npm (what its `^10.0.2` installs).
 */
import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { bundle } from '../../build/bundle';
import { alertText } from '../helpers/fixtures';
import { MemoryCluster, type ListeningCluster } from '../helpers/memory-cluster';
import { kubelessEnv, nodeBinaries, request, sidekickPost, spawnRuntime } from '../helpers/runtime-process';

const ROOT = path.resolve(__dirname, '..', '..');

const alertOn = (pod: string) => {
  const alert = JSON.parse(alertText('terminal-shell')) as { output_fields: Record<string, unknown> };
  alert.output_fields['k8s.pod.name'] = pod;
  return JSON.stringify(alert);
};

/** The lines of a metrics text about our metrics, buckets apart from `+Inf` left out (their counts depend on time). */
const ours = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith('falco_response_') && !(line.includes('_bucket{') && !line.includes('le="+Inf"')))
    .sort();

/** What a program that loads the bundle as Kubeless's runtime does prints: prom-client's default registry, after three calls. */
const PROM_MAIN = `
const client = require('prom-client');
const { handler } = require(process.argv[2]);
const response = { status() { return response; } };
const call = (data, id) => handler({ data, 'event-id': id, extensions: { request: { headers: {} }, response } }, { timeout: 30 });
(async () => {
  await call(JSON.parse(process.argv[3]), 'e-1');
  await call(JSON.parse(process.argv[4]), 'e-2');
  await call({}, 'e-3');
  await handler.drain();
  process.stdout.write(String(client.register.metrics()));
})().catch((error) => { process.stderr.write(String(error.stack)); process.exit(1); });
`;

describe('the functions\' metrics on /metrics, on Node 12, 14 and current', function () {
  this.timeout(120000);
  let scratch: string;
  let api: ListeningCluster;
  let kubeconfig: string;
  let dir: string;
  const cluster = new MemoryCluster();

  before(async () => {
    nodeBinaries();
    scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-metrics-'));
    api = await cluster.listen();
    kubeconfig = api.writeKubeconfig(path.join(scratch, 'kubeconfig.json'));
    dir = path.join(scratch, 'kubeless');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'delete-pod.js'), (await bundle('delete-pod', path.join(ROOT, 'functions', 'delete-pod', 'index.ts'), '')).code);
    writeFileSync(path.join(dir, 'runtime.js'), (await bundle('runtime', path.join(ROOT, 'runtime', 'main.ts'), '')).code);
    writeFileSync(path.join(scratch, 'prom-main.js'), PROM_MAIN);
  });

  after(async () => {
    await api?.close();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  for (const version of ['12', '14', 'current']) {
    const binary = () => nodeBinaries().find((n) => (version === 'current' ? n.path === process.execPath : n.version.startsWith(`v${version}.`)))!;

    it(`Node ${version}, our runtime: a done, a skip and an invalid call, then the Event, as series with their counts`, async () => {
      // Given
      cluster.addPod('default', `web-${version}`);
      const runtime = await spawnRuntime({ node: binary().path, runtimeFile: path.join(dir, 'runtime.js'), env: { ...kubelessEnv('delete-pod', dir), KUBECONFIG: kubeconfig, RULES: '*' } });
      try {
        // When
        assert.equal((await sidekickPost(runtime.port, alertOn(`web-${version}`), { eventId: 'e-1' })).status, 200);
        assert.equal((await sidekickPost(runtime.port, alertOn('gone'), { eventId: 'e-2' })).status, 200);
        assert.equal((await sidekickPost(runtime.port, '{}', { eventId: 'e-3' })).status, 400);
        let text = '';
        for (let i = 0; i < 100 && !text.includes('result="recorded"'); i++) {
          text = (await request(runtime.port, { method: 'GET', path: '/metrics' })).body;
          if (!text.includes('result="recorded"')) await new Promise((resolve) => setTimeout(resolve, 50));
        }

        // Then
        assert.deepEqual(ours(text), [
          'falco_response_alerts_total{function="delete-pod",outcome="done",code=""} 1',
          'falco_response_alerts_total{function="delete-pod",outcome="invalid",code=""} 1',
          'falco_response_alerts_total{function="delete-pod",outcome="skipped",code="pod-gone"} 1',
          'falco_response_answer_seconds_bucket{function="delete-pod",le="+Inf"} 3',
          'falco_response_answer_seconds_count{function="delete-pod"} 3',
          ...ours(text).filter((l) => l.startsWith('falco_response_answer_seconds_sum{function="delete-pod"} ')),
          'falco_response_audit_events_total{function="delete-pod",result="recorded"} 1',
        ].sort());
        assert.ok(text.split('\n').includes('function_calls_total{method="delete-pod-POST"} 3'), text);
        assert.ok(text.includes('# TYPE falco_response_answer_seconds histogram\n'), text);
        assert.deepEqual(await runtime.stop('SIGTERM'), { code: 0, signal: null });
      } finally {
        await runtime.stop('SIGKILL');
      }
    });

    it(`Node ${version}, prom-client 10 as Kubeless's runtime loads it: our series in its default registry`, async () => {
      // Given: the program's prom-client found through NODE_PATH, as Kubeless's runtime finds its own node_modules
      cluster.addPod('default', `api-${version}`);
      const env = { PATH: process.env.PATH ?? '', NODE_PATH: path.join(ROOT, 'node_modules'), KUBECONFIG: kubeconfig, RULES: '*' };

      // When
      const text = await new Promise<string>((resolve, reject) =>
        execFile(binary().path, [path.join(scratch, 'prom-main.js'), path.join(dir, 'delete-pod.js'), alertOn(`api-${version}`), alertOn('gone')], { env }, (error, stdout, stderr) =>
          error === null ? resolve(stdout) : reject(new Error(`${error.message}\n${stderr}`)),
        ),
      );

      // Then
      const lines = text.split('\n');
      for (const line of [
        '# TYPE falco_response_alerts_total counter',
        'falco_response_alerts_total{function="delete-pod",outcome="done",code=""} 1',
        'falco_response_alerts_total{function="delete-pod",outcome="skipped",code="pod-gone"} 1',
        'falco_response_alerts_total{function="delete-pod",outcome="invalid",code=""} 1',
        '# TYPE falco_response_answer_seconds histogram',
        'falco_response_answer_seconds_bucket{le="+Inf",function="delete-pod"} 3',
        'falco_response_answer_seconds_count{function="delete-pod"} 3',
        'falco_response_audit_events_total{function="delete-pod",result="recorded"} 1',
      ]) {
        assert.ok(lines.includes(line), `no line ${line} in\n${text}`);
      }
    });
  }
});
