/**
 * The standalone runtime under floods, as the generated pod runs it (delete-pod's manifest, its environment and its
 * memory limit): any pod may reach a function's port, so thousands of pipelined requests or idle connections must
 * neither kill the process nor take it past the limit the kubelet enforces (an OOM kill is an outage too).
 * The figures are printed; the assertions are the answers counted and the limit the manifest sets.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync } from 'fs';
import type * as net from 'net';
import { tmpdir } from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { buildAll, ROOT } from '../../build/main';
import { STANDALONE_DIR } from '../../build/standalone';
import { DEFAULT_LIMITS } from '../../runtime/server';
import { alertText } from '../helpers/fixtures';
import { MemoryCluster, type ListeningCluster } from '../helpers/memory-cluster';
import {
  connect,
  emulatePod,
  KUBELESS_NODE_VERSIONS,
  nodeBinaries,
  onLoopback,
  quantityBytes,
  readAnswers,
  request,
  rssBytes,
  sampleRss,
  sidekickRequestBytes,
  spawnRuntime,
  type RawAnswer,
  type RuntimeProcess,
  until,
} from '../helpers/runtime-process';

const PIPELINED = 10000;
const SOCKETS = 4;
const IDLE = 9000;
const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

describe("the standalone runtime under floods, within the pod's memory limit (delete-pod's generated manifest)", function () {
  this.timeout(300000);
  let scratch: string;
  // Holds no pod kubecon: every alert reads it once and is answered skipped.
  const cluster = new MemoryCluster();
  let api: ListeningCluster;
  let program: string;
  let env: Record<string, string>;
  let limitBytes: number;
  let limitText: string;

  before(async () => {
    nodeBinaries();
    scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-flood-'));
    api = await cluster.listen();
    const kubeconfig = api.writeKubeconfig(path.join(scratch, 'kubeconfig.json'));
    const result = await buildAll(ROOT);
    const objects = parseAllDocuments(result.manifests.get(`${STANDALONE_DIR}/delete-pod.yaml`)!).map((d) => d.toJS());
    const deployment = objects.find((o: any) => o.kind === 'Deployment');
    limitText = deployment.spec.template.spec.containers[0].resources.limits.memory;
    limitBytes = quantityBytes(limitText);
    const pod = emulatePod(objects, path.join(scratch, 'delete-pod'));
    program = pod.program;
    env = onLoopback({ ...pod.env, RULES: '*', KUBECONFIG: kubeconfig });
  });

  after(async () => {
    await api?.close();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  for (const version of [...KUBELESS_NODE_VERSIONS, 'current']) {
    describe(`under Node ${version}`, () => {
      let runtime: RuntimeProcess | undefined;

      beforeEach(async () => {
        const node = nodeBinaries().find((n) => (version === 'current' ? n.path === process.execPath : n.version === `v${version}`));
        assert.ok(node !== undefined, `no Node ${version}`);
        runtime = await spawnRuntime({ node: node.path, runtimeFile: program, env });
      });

      afterEach(async () => {
        await runtime?.stop('SIGKILL');
        cluster.take();
      });

      it(`answers every one of ${PIPELINED} alerts pipelined on ${SOCKETS} connections, its RSS under the pod's limit`, async () => {
        // Given the runtime serving delete-pod, idle
        const pid = runtime!.child.pid!;
        const idleRss = rssBytes(pid);
        const perSocket = PIPELINED / SOCKETS;
        const requests = Buffer.concat(Array.from({ length: perSocket }, () => sidekickRequestBytes(alertText('terminal-shell'))));

        // When each connection sends its share of the alerts at once, without waiting for any answer
        const sampler = sampleRss(pid);
        const started = Date.now();
        const sockets: net.Socket[] = [];
        const reading: { answers: RawAnswer[]; closed: Promise<void> }[] = [];
        for (let i = 0; i < SOCKETS; i++) {
          const socket = await connect(runtime!.port);
          sockets.push(socket);
          reading.push(readAnswers(socket));
          socket.write(requests);
        }
        let closedEarly = 0;
        for (const r of reading) r.closed.then(() => closedEarly++, assert.fail);
        const answered = () => reading.reduce((n, r) => n + r.answers.length, 0);
        await until(() => answered() === PIPELINED || closedEarly > 0, `${PIPELINED} answers (${answered()} so far)`, 240000);
        const peak = sampler.stop();
        const seconds = (Date.now() - started) / 1000;
        for (const socket of sockets) socket.destroy();

        // Then every request got its answer, each the skipped outcome for a pod already gone (or a 503 refusal
        // when the function's in-flight limit is full), and the process never went past the pod's memory limit
        const statuses = new Map<number, number>();
        for (const answer of reading.flatMap((r) => r.answers)) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        process.stdout.write(
          `      [flood] Node ${version}: ${answered()} answers in ${seconds.toFixed(1)} s ${JSON.stringify([...statuses])}; ` +
            `RSS idle ${mib(idleRss)}, peak ${mib(peak)} (limit ${limitText})\n`,
        );
        assert.equal(answered(), PIPELINED, `answers; the server closed ${closedEarly} connection(s) early`);
        assert.deepEqual([...statuses.keys()].filter((s) => s !== 200 && s !== 503), [], 'statuses other than 200 and 503');
        assert.ok(peak < limitBytes, `peak RSS ${mib(peak)} is past the pod's limit ${limitText}`);
        assert.equal(runtime!.child.exitCode, null, `the runtime exited; stderr: ${runtime!.stderr()}`);
      });

      it(`keeps at most its connection cap (${DEFAULT_LIMITS.MAX_CONNECTIONS}) of ${IDLE} connections that send nothing, its RSS under the limit, and still answers /healthz`, async () => {
        // Given the runtime, idle
        const pid = runtime!.child.pid!;
        const idleRss = rssBytes(pid);
        const sampler = sampleRss(pid);

        // When thousands of connections open and send nothing
        const sockets: net.Socket[] = [];
        let closedByServer = 0;
        for (let i = 0; i < IDLE; i++) {
          const socket = await connect(runtime!.port);
          socket.on('error', () => undefined);
          socket.on('close', () => closedByServer++);
          sockets.push(socket);
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const health = await request(runtime!.port, { method: 'GET', path: '/healthz' });
        const peak = sampler.stop();
        const held = rssBytes(pid);
        const open = IDLE - closedByServer;
        for (const socket of sockets) socket.destroy();

        // Then the kubelet's probe still gets its answer, the process stays up and under the limit, and the
        // connections past the cap were closed rather than held
        process.stdout.write(
          `      [flood] Node ${version}: ${IDLE} idle connections, ${open} left open; ` +
            `RSS idle ${mib(idleRss)}, peak ${mib(peak)}, with them open ${mib(held)} (limit ${limitText})\n`,
        );
        assert.equal(health.status, 200);
        assert.equal(health.body, 'OK');
        assert.equal(runtime!.child.exitCode, null, `the runtime exited; stderr: ${runtime!.stderr()}`);
        assert.ok(peak < limitBytes, `peak RSS ${mib(peak)} is past the pod's limit ${limitText}`);
        assert.ok(open <= DEFAULT_LIMITS.MAX_CONNECTIONS, `${open} idle connections are still open`);
      });

      it(`answers Falcosidekick's call whose body is still arriving while ${2 * DEFAULT_LIMITS.MAX_CONNECTIONS} connections that send nothing open`, async () => {
        // Given Falcosidekick's call on the oldest connection, its headers and part of its body sent
        const call = sidekickRequestBytes(alertText('terminal-shell'));
        const sidekick = await connect(runtime!.port);
        const reading = readAnswers(sidekick);
        sidekick.write(call.subarray(0, call.length - 10));
        await new Promise((resolve) => setTimeout(resolve, 200));

        // When twice the connection cap opens and sends nothing
        const flood = 2 * DEFAULT_LIMITS.MAX_CONNECTIONS;
        const sockets: net.Socket[] = [];
        let closedByServer = 0;
        for (let i = 0; i < flood; i++) {
          const socket = await connect(runtime!.port);
          socket.on('error', () => undefined);
          socket.on('close', () => closedByServer++);
          sockets.push(socket);
        }
        const mustClose = flood + 1 - DEFAULT_LIMITS.MAX_CONNECTIONS;
        await until(() => closedByServer + (reading.isClosed() ? 1 : 0) >= mustClose, `${mustClose} connections closed (${closedByServer} so far)`);
        const sidekickClosed = reading.isClosed();
        if (!sidekickClosed) sidekick.write(call.subarray(call.length - 10));
        await until(() => reading.answers.length > 0 || reading.isClosed(), "the call's answer");
        for (const socket of [...sockets, sidekick]) socket.destroy();

        // Then the connections closed to take the new ones are the idle ones: the call is served, not cut
        assert.equal(sidekickClosed, false, "Falcosidekick's connection was closed to take a new one, its call never served");
        assert.deepEqual(reading.answers.map((a) => a.status), [200]);
      });
    });
  }
});
