import { strict as assert } from 'assert';
import { spawn, type ChildProcess } from 'child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { alertText } from '../helpers/fixtures';
import { corpusEnv, expectedAnswer, hostileCorpus, type HostileInput } from '../helpers/hostile';
import { podActions, ROOT } from '../helpers/pod-actions';

const DIST = path.join(ROOT, 'dist');
const RUNTIME = path.join(DIST, 'runtime', 'kubeless-runtime.js');

/** The newest modification time under a folder: a bundle older than its sources tests old code. */
function newestMtime(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((newest, entry) => {
    const full = path.join(dir, entry.name);
    return Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }, 0);
}

function checkBuilt(names: readonly string[]): void {
  for (const name of names) {
    const bundle = path.join(DIST, 'functions', `${name}.js`);
    if (!existsSync(bundle) || !existsSync(RUNTIME)) {
      throw new Error(`${path.relative(ROOT, bundle)} or the runtime is missing: run \`npm run build\` first`);
    }
    const sources = Math.max(newestMtime(path.join(ROOT, 'lib')), newestMtime(path.join(ROOT, 'functions', name)));
    if (statSync(bundle).mtimeMs < sources) {
      throw new Error(`${path.relative(ROOT, bundle)} is older than its sources: run \`npm run build\` first`);
    }
  }
}

/** A fake API server on loopback that counts every request: the corpus must never reach it. */
async function countingApiServer(): Promise<{ server: http.Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method ?? '?'} ${req.url ?? '?'}`);
    // 404, which is never retried: one request is one line here.
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', message: 'the corpus must never reach the API server', code: 404 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** A kubeconfig in the JSON form the bundles read (lib/kube/connection.ts kubeconfigConnection). */
function writeKubeconfig(dir: string, server: string): string {
  const file = path.join(dir, 'kubeconfig.json');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'corpus',
    contexts: [{ name: 'corpus', context: { cluster: 'fake', user: 'fake' } }],
    clusters: [{ name: 'fake', cluster: { server } }],
    users: [{ name: 'fake', user: { token: 'corpus-token' } }],
  };
  writeFileSync(file, JSON.stringify(config));
  return file;
}

interface RunningRuntime {
  readonly child: ChildProcess;
  readonly port: number;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

/** Starts the built runtime serving one built function, exactly as Kubeless would (PROTOCOLS section 1). */
function startRuntime(name: string, env: Record<string, string>): Promise<RunningRuntime> {
  const child = spawn(process.execPath, [RUNTIME], {
    env: {
      PATH: process.env.PATH ?? '',
      MOD_NAME: name,
      FUNC_HANDLER: 'handler',
      FUNC_TIMEOUT: '30',
      FUNC_PORT: '0',
      FUNC_HOST: '127.0.0.1',
      FUNC_RUNTIME: 'nodejs14',
      KUBELESS_INSTALL_VOLUME: path.join(DIST, 'functions'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const listening = /\{"message":"listening","port":(\d+)/.exec(stdout);
      if (listening !== null) resolve({ child, port: Number(listening[1]), stderr: () => stderr, exited });
    });
    exited.then((code) => reject(new Error(`the runtime exited with ${String(code)} before listening: ${stderr}`)), reject);
  });
}

function send(
  port: number,
  method: string,
  urlPath: string,
  body?: { text: string; contentType: string },
): Promise<{ status: number; text: string; contentType: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(body.text, 'utf8');
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: urlPath,
        agent: false,
        // What Falcosidekick sends (PROTOCOLS section 3), with the content type of the delivery.
        headers:
          payload === undefined
            ? {}
            : {
                'Content-Type': body!.contentType,
                'Content-Length': payload.length,
                'User-Agent': 'Falcosidekick',
                'event-id': '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f',
                'event-type': 'falco',
                'event-namespace': 'falco-response',
              },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), contentType: String(res.headers['content-type']) }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The corpus split by settings: one runtime process per action and settings. */
function bySettings(corpus: readonly HostileInput[]): Map<string, HostileInput[]> {
  const groups = new Map<string, HostileInput[]>();
  for (const input of corpus) {
    const key = JSON.stringify(corpusEnv(input));
    groups.set(key, [...(groups.get(key) ?? []), input]);
  }
  return groups;
}

const corpus = hostileCorpus();
const actions = podActions();

describe('the built bundles answer the hostile corpus over HTTP through the runtime (current Node)', function () {
  this.timeout(60000);
  let api: Awaited<ReturnType<typeof countingApiServer>>;
  let dir: string;
  let kubeconfig: string;

  before(async () => {
    checkBuilt(actions.map((a) => a.name));
    api = await countingApiServer();
    dir = mkdtempSync(path.join(os.tmpdir(), 'hostile-corpus-'));
    kubeconfig = writeKubeconfig(dir, api.url);
  });

  after(async () => {
    if (api !== undefined) await new Promise((resolve) => api.server.close(resolve));
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('reaches the counting API server with a valid alert (so that zero requests from the corpus means something)', async () => {
    const runtime = await startRuntime('delete-pod', { KUBECONFIG: kubeconfig });
    try {
      const answer = await send(runtime.port, 'POST', '/', { text: alertText('terminal-shell'), contentType: 'application/json' });
      assert.equal(answer.status, 200);
      assert.equal(JSON.parse(answer.text).code, 'pod-gone');
      assert.deepEqual(api.requests, ['GET /api/v1/namespaces/default/pods/kubecon']);
    } finally {
      runtime.child.kill('SIGTERM');
      api.requests.length = 0;
    }
    assert.equal(await runtime.exited, 0);
  });

  for (const action of actions) {
    for (const [settings, inputs] of bySettings(corpus)) {
      it(`${action.name} with ${settings}: ${inputs.length} inputs, each its answer; no API request; the process stays up`, async () => {
        // Given
        const runtime = await startRuntime(action.name, { KUBECONFIG: kubeconfig, ...(JSON.parse(settings) as Record<string, string>) });
        const wrong: string[] = [];
        try {
          // When
          for (const input of inputs) {
            const contentType = input.as === 'json' ? 'application/json' : 'text/plain; charset=utf-8';
            const answer = await send(runtime.port, 'POST', '/', { text: input.text, contentType });
            // Then
            let body: unknown;
            try {
              body = JSON.parse(answer.text);
            } catch {
              body = answer.text;
            }
            try {
              assert.equal(answer.status, input.expect.status);
              assert.match(answer.contentType, /^application\/json/);
              assert.deepEqual(body, expectedAnswer(input.expect));
            } catch (error) {
              wrong.push(`${input.name}: ${(error as Error).message}`);
            }
          }
          const health = await send(runtime.port, 'GET', '/healthz');
          assert.deepEqual([health.status, health.text], [200, 'OK'], 'healthz after the corpus');
          assert.equal(runtime.child.exitCode, null, 'the runtime exited during the corpus');
        } finally {
          runtime.child.kill('SIGTERM');
        }
        assert.equal(await runtime.exited, 0, 'the runtime did not close cleanly on SIGTERM');
        assert.deepEqual(wrong, []);
        assert.deepEqual(api.requests, [], 'requests that reached the API server');
        // Bad input is logged at info level on stdout; anything on stderr is a crash, a warning or an error, but for
        // the warning at start that no shared secret is set (these runs have none).
        const noSecret = /^\{[^\n]*"level":"warn"[^\n]*"message":"no shared secret: every caller is accepted[^\n]*\}$/;
        assert.deepEqual(runtime.stderr().split('\n').filter((line) => line !== '' && !noSecret.test(line)), []);
      });
    }
  }
});
