import { strict as assert } from 'assert';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { alertText, AUTHORIZED, TEST_SECRET } from '../helpers/fixtures';
import { corpusEnv, expectedAnswer, expectedOf, hostileCorpus, type HostileInput } from '../helpers/hostile';
import { MemoryCluster, type ListeningCluster } from '../helpers/memory-cluster';
import type { TargetKind } from '../../lib/resolve';
import { auditObjectActions, nodeActions, podActions, ROOT } from '../helpers/pod-actions';
import { kubelessEnv, request, sidekickPost, spawnRuntime, type HttpAnswer } from '../helpers/runtime-process';

const DIST = path.join(ROOT, 'dist');
const RUNTIME = path.join(DIST, 'runtime', 'kubeless-runtime.js');

/** The newest modification time under a folder: a bundle older than its sources tests old code. */
function newestMtime(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((newest, entry) => {
    const full = path.join(dir, entry.name);
    return Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }, 0);
}

/** Starts the built runtime serving one built function, exactly as Kubeless would (PROTOCOLS section 1). */
function startRuntime(name: string, env: Record<string, string>) {
  const kubeless = kubelessEnv(name, path.join(DIST, 'functions'));
  return spawnRuntime({ node: process.execPath, runtimeFile: RUNTIME, env: { PATH: process.env.PATH ?? '', ...kubeless, ...env } });
}

/** What Falcosidekick sends (PROTOCOLS section 3), with the content type of the delivery. */
function send(port: number, input: HostileInput): Promise<HttpAnswer> {
  // An authorized caller: the corpus is about what the alert holds (delete-object refuses any call without the secret).
  return sidekickPost(port, input.text, { contentType: input.as === 'json' ? 'application/json' : 'text/plain; charset=utf-8', authorization: AUTHORIZED.authorization });
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

/** The corpus split by settings (an action's kind of target may have its own): one runtime process per action and settings. */
function bySettings(corpus: readonly HostileInput[], kind: TargetKind): Map<string, HostileInput[]> {
  const groups = new Map<string, HostileInput[]>();
  for (const input of corpus) {
    const key = JSON.stringify(corpusEnv(input, kind));
    groups.set(key, [...(groups.get(key) ?? []), input]);
  }
  return groups;
}

const corpus = hostileCorpus();
// Pod actions and node actions find their target through the alert's pod, audit-object actions through the audit
// event's object.
const actions = [...podActions(), ...nodeActions(), ...auditObjectActions()];

describe('the built bundles answer the hostile corpus over HTTP through the runtime (current Node)', function () {
  this.timeout(60000);
  // Empty: a valid alert reads its pod once and is answered skipped (a 404 is never retried: one request is one
  // call here); the corpus must never reach it.
  const cluster = new MemoryCluster();
  let api: ListeningCluster;
  let dir: string;
  let kubeconfig: string;

  before(async () => {
    checkBuilt(actions.map((a) => a.name));
    api = await cluster.listen();
    dir = mkdtempSync(path.join(os.tmpdir(), 'hostile-corpus-'));
    kubeconfig = api.writeKubeconfig(path.join(dir, 'kubeconfig.json'));
  });

  after(async () => {
    await api?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('reaches the in-memory cluster with a valid alert (so that zero requests from the corpus means something)', async () => {
    const runtime = await startRuntime('delete-pod', { KUBECONFIG: kubeconfig });
    let end;
    try {
      const answer = await sidekickPost(runtime.port, alertText('terminal-shell'));
      assert.equal(answer.status, 200);
      assert.equal(JSON.parse(answer.body).code, 'pod-gone');
      assert.deepEqual(cluster.take().map((c) => `${c.method} ${c.path}`), ['GET /api/v1/namespaces/default/pods/kubecon']);
    } finally {
      end = await runtime.stop('SIGTERM');
    }
    assert.deepEqual(end, { code: 0, signal: null });
  });

  for (const action of actions) {
    const kind = action.target.kind;
    for (const [settings, inputs] of bySettings(corpus, kind)) {
      it(`${action.name} with ${settings}: ${inputs.length} inputs, each its answer; no API request; the process stays up`, async () => {
        // Given
        const runtime = await startRuntime(action.name, { KUBECONFIG: kubeconfig, INBOUND_SECRET: TEST_SECRET, ...(JSON.parse(settings) as Record<string, string>) });
        const wrong: string[] = [];
        let end;
        try {
          // When
          for (const input of inputs) {
            const answer = await send(runtime.port, input);
            // Then
            let body: unknown;
            try {
              body = JSON.parse(answer.body);
            } catch {
              body = answer.body;
            }
            const expect = expectedOf(input, kind);
            try {
              assert.equal(answer.status, expect.status);
              assert.match(String(answer.headers['content-type']), /^application\/json/);
              assert.deepEqual(body, expectedAnswer(expect, kind));
            } catch (error) {
              wrong.push(`${input.name}: ${(error as Error).message}`);
            }
          }
          const health = await request(runtime.port, { method: 'GET', path: '/healthz' });
          assert.deepEqual([health.status, health.body], [200, 'OK'], 'healthz after the corpus');
          assert.equal(runtime.child.exitCode, null, 'the runtime exited during the corpus');
        } finally {
          end = await runtime.stop('SIGTERM');
        }
        assert.deepEqual(end, { code: 0, signal: null }, 'the runtime did not close cleanly on SIGTERM');
        assert.deepEqual(wrong, []);
        assert.deepEqual(cluster.take().map((c) => `${c.method} ${c.path}`), [], 'requests that reached the API server');
        // Bad input is logged at info level on stdout; anything on stderr is a crash, a warning or an error, but for
        // the warning at start that no shared secret is set (these runs have none).
        const noSecret = /^\{[^\n]*"level":"warn"[^\n]*"message":"no shared secret: every caller is accepted[^\n]*\}$/;
        assert.deepEqual(runtime.stderr().split('\n').filter((line) => line !== '' && !noSecret.test(line)), []);
      });
    }
  }
});
