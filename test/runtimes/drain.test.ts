/**
 * The runtime's shutdown, as a pod's container gets it: SIGTERM while Services may still send calls (an endpoint
 * leaves kube-proxy's rules a moment after the pod is deleted) and while calls are in flight. Readiness drops at once,
 * new calls are still served for SHUTDOWN_DELAY_SECONDS, the calls in flight end, then the process exits 0. Run with
 * the bundled runtime on Node 12, 14 and the current Node.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { bundle } from '../../build/bundle';
import { kubelessEnv, nodeBinaries, request, spawnRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const ROOT = path.resolve(__dirname, '..', '..');

/** A function that answers after `ms` milliseconds, and says on stdout when a call has reached it. */
const SLOW_FUNCTION = `
module.exports.handler = (event) => {
  process.stdout.write('call started ' + event.data.id + '\\n');
  return new Promise((resolve) => setTimeout(() => resolve('done ' + event.data.id), event.data.ms));
};
`;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const call = (port: number, id: string, ms: number) =>
  request(port, { method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id, ms }) });

/** A call on a keep-alive connection, as the forwarder makes them: the answer's Connection header is the server's. */
function keepAliveCall(port: number, id: string): Promise<{ status: number; connection: string | undefined; body: string }> {
  const agent = new http.Agent({ keepAlive: true });
  const body = JSON.stringify({ id, ms: 0 });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          agent.destroy();
          resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A function that answers at once and leaves work after its answer, as ours leave their audit Events (lib/entry.ts drain()). */
const LEAVING_FUNCTION = `
let left = Promise.resolve();
module.exports.handler = (event) => {
  left = new Promise((resolve) => setTimeout(() => { process.stdout.write('work after the answer done\\n'); resolve(); }, event.data.ms));
  return 'answered';
};
module.exports.handler.drain = () => left.then(() => process.stdout.write('drained\\n'));
`;

describe('runtime: SIGTERM drains', function () {
  this.timeout(60000);
  let dir: string;
  let program: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'falco-response-drain-'));
    program = path.join(dir, 'kubeless-runtime.js');
    writeFileSync(program, (await bundle('kubeless-runtime', path.join(ROOT, 'runtime', 'main.ts'), '/* drain test */')).code);
    writeFileSync(path.join(dir, 'slow.js'), SLOW_FUNCTION);
    writeFileSync(path.join(dir, 'leaving.js'), LEAVING_FUNCTION);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const node of nodeBinaries()) {
    describe(`under Node ${node.version}`, () => {
      let runtime: RuntimeProcess | undefined;
      afterEach(async () => {
        await runtime?.stop('SIGKILL');
      });

      it('drops readiness at once, serves new calls for SHUTDOWN_DELAY_SECONDS, ends the calls in flight, exits 0', async () => {
        // Given a runtime with a shutdown delay of 1 s, and a call in flight that takes 2.5 s
        runtime = await spawnRuntime({ node: node.path, runtimeFile: program, env: { ...kubelessEnv('slow', dir), SHUTDOWN_DELAY_SECONDS: '1' } });
        const port = runtime.port;
        assert.equal((await request(port, { method: 'GET', path: '/healthz' })).status, 200);
        const inFlight = call(port, 'in-flight', 2500);
        await until('the call in flight reaching the function', () => runtime!.stdout().includes('call started in-flight'));
        const exited = runtime.stop('SIGTERM');
        let ended = false;
        // A failure to stop is the `await exited` below's to report.
        exited.then(
          () => (ended = true),
          () => undefined,
        );

        // When the kubelet probes, and a Service still sends a new call during the delay
        await until('/healthz answering 503', async () => (await request(port, { method: 'GET', path: '/healthz' })).status === 503);
        const health = await request(port, { method: 'GET', path: '/healthz' });
        const late = await keepAliveCall(port, 'late');

        // Then readiness is down, the new call is served (and told to close its connection), the call in flight
        // is answered before the process ends, and it ends cleanly
        assert.deepEqual([health.status, health.body], [503, 'Draining']);
        assert.deepEqual([late.status, late.body, late.connection], [200, 'done late', 'close']);
        const first = await inFlight;
        assert.equal(ended, false, 'the process ended before the call in flight was answered');
        assert.deepEqual([first.status, first.body], [200, 'done in-flight']);
        assert.deepEqual(await exited, { code: 0, signal: null });
      });

      it("awaits the function's drain() (the work left after its answers, such as the audit Events) before it exits 0", async () => {
        // Given a call answered at once that left 1 s of work
        runtime = await spawnRuntime({ node: node.path, runtimeFile: program, env: kubelessEnv('leaving', dir) });
        const answer = await call(runtime.port, 'leaving', 1000);
        assert.deepEqual([answer.status, answer.body], [200, 'answered']);

        // When SIGTERM comes
        const end = await runtime.stop('SIGTERM');

        // Then the process ended once that work was done, cleanly
        assert.deepEqual(end, { code: 0, signal: null });
        assert.ok(runtime.stdout().includes('work after the answer done\ndrained\n'), runtime.stdout());
      });

      it('without SHUTDOWN_DELAY_SECONDS (as Kubeless), stops listening at once and still ends the call in flight', async () => {
        // Given a runtime with no delay, and a call in flight
        runtime = await spawnRuntime({ node: node.path, runtimeFile: program, env: kubelessEnv('slow', dir) });
        const port = runtime.port;
        const inFlight = call(port, 'in-flight', 1000);
        await until('the call in flight reaching the function', () => runtime!.stdout().includes('call started in-flight'));
        // When SIGTERM comes
        const exited = runtime.stop('SIGTERM');
        // Then the call in flight is answered, and the process ends with 0
        const first = await inFlight;
        assert.deepEqual([first.status, first.body], [200, 'done in-flight']);
        assert.deepEqual(await exited, { code: 0, signal: null });
      });

      it('closes the keep-alive connection of a call that was in flight once it is answered, rather than wait for KEEPALIVE_TIMEOUT to exit', async () => {
        // Given a call in flight on a keep-alive connection that its client keeps for a next call (as Falcosidekick's
        // and the forwarder's clients do), and a long KEEPALIVE_TIMEOUT
        runtime = await spawnRuntime({ node: node.path, runtimeFile: program, env: { ...kubelessEnv('slow', dir), KEEPALIVE_TIMEOUT: '60' } });
        const agent = new http.Agent({ keepAlive: true });
        const body = JSON.stringify({ id: 'kept', ms: 1000 });
        const inFlight = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
          const req = http.request(
            { host: '127.0.0.1', port: runtime!.port, method: 'POST', path: '/', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } },
            (res) => {
              res.resume();
              res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
        await until('the call in flight reaching the function', () => runtime!.stdout().includes('call started kept'));

        // When SIGTERM comes, and the call is answered
        const exited = runtime.stop('SIGTERM');
        const answer = await inFlight;
        const answeredAt = Date.now();
        const end = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 3000))]);
        const took = Date.now() - answeredAt;
        agent.destroy();

        // Then the process ends at once (well under the 3 s waited, not the 60 s of KEEPALIVE_TIMEOUT), with 0
        assert.equal(answer.status, 200);
        assert.deepEqual(end, { code: 0, signal: null }, `still running ${took} ms after the last answer`);
      });
    });
  }
});
