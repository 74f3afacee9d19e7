import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import * as http from 'http';
import { tmpdir } from 'os';
import * as path from 'path';
import nock from 'nock';
import { bundle } from '../../build/bundle';
import { discoverFunctions } from '../../build/discover';
import { alertBody, formatAnswer, invoke, InvokeError } from '../../build/invoke';
import { buildAll, ROOT } from '../../build/main';
import { createFunction, InvalidFunctionNameError, nameProblem } from '../../build/new';
import { kubeconfigAsJson, parseServeArgs, serve, SERVE_STATE, ServeError, type Served } from '../../build/serve';
import { startStub, type HttpStub } from '../helpers/http-stub';
import { FIXTURES } from '../helpers/fixtures';
import { MemoryCluster, type ListeningCluster } from '../helpers/memory-cluster';

const TERMINAL_SHELL = path.join(FIXTURES, 'alerts', 'terminal-shell.json');
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** A scratch copy of the repository root: its own functions/ (copied); lib/, runtime/, node_modules/ and test helpers linked. */
function scratchRoot(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'falco-response-root-'));
  cpSync(path.join(ROOT, 'functions'), path.join(root, 'functions'), { recursive: true });
  cpSync(path.join(ROOT, 'falco-response.yaml'), path.join(root, 'falco-response.yaml'));
  for (const dir of ['lib', 'runtime', 'node_modules']) symlinkSync(path.join(ROOT, dir), path.join(root, dir));
  mkdirSync(path.join(root, 'test'));
  symlinkSync(path.join(ROOT, 'test', 'helpers'), path.join(root, 'test', 'helpers'));
  symlinkSync(path.join(ROOT, 'test', 'fixtures'), path.join(root, 'test', 'fixtures'));
  return root;
}

describe('tools for people who write handlers', function () {
  this.timeout(60000);
  before(() => nock.enableNetConnect('127.0.0.1'));
  after(() => nock.disableNetConnect());

  describe('npm run invoke', () => {
    let stub: HttpStub;
    let dist: string;
    beforeEach(async () => {
      stub = await startStub(() => ({ status: 200, body: { status: 'skipped', code: 'test-event', reason: 'nothing to do' } }));
      dist = mkdtempSync(path.join(tmpdir(), 'falco-response-dist-'));
    });
    afterEach(async () => {
      await stub.close();
      rmSync(dist, { recursive: true, force: true });
    });

    it('sends the alert exactly as Falcosidekick does (shared/PROTOCOLS.md section 3)', async () => {
      // When
      const result = await invoke({ target: stub.url, alertFile: TERMINAL_SHELL });

      // Then
      assert.equal(stub.received.length, 1);
      const [request] = stub.received;
      assert.equal(request.method, 'POST');
      assert.equal(request.url, '/');
      const text = readFileSync(TERMINAL_SHELL, 'utf8');
      assert.equal(request.body.toString('utf8'), `${text.trimEnd()}\n`, 'the file text, then one newline');
      // Host and Connection are the transport's, not Falcosidekick's choice.
      const headers = Object.fromEntries(Object.entries(request.headers).filter(([name]) => name !== 'host' && name !== 'connection'));
      assert.deepEqual(
        { ...headers, 'event-id': UUID_V4.test(String(headers['event-id'])) ? 'a uuid v4' : headers['event-id'] },
        {
          'content-type': 'application/json',
          'user-agent': 'Falcosidekick',
          'event-id': 'a uuid v4',
          'event-type': 'falco',
          'event-namespace': 'falco-response',
          'content-length': String(Buffer.byteLength(`${text.trimEnd()}\n`)),
        },
      );
      assert.equal(result.status, 200);
      assert.equal(result.eventId, request.headers['event-id']);
      assert.match(
        formatAnswer(result),
        new RegExp(`^POST ${stub.url} \\(event-id ${result.eventId}\\)\\nHTTP 200 OK in [\\d.]+ ms\\n\\{\\n  "status": "skipped",`),
      );
    });

    it('finds a function that npm run serve runs by its name', async () => {
      writeFileSync(path.join(dist, SERVE_STATE), JSON.stringify({ functions: { 'delete-pod': stub.url } }));
      const result = await invoke({ target: 'delete-pod', alertFile: TERMINAL_SHELL, dist });
      assert.equal(result.url, stub.url);
      assert.equal(stub.received.length, 1);
    });

    it('says what is wrong with the target or the alert file', async () => {
      const notJson = path.join(dist, 'alert.txt');
      writeFileSync(notJson, 'rule=x');
      let parseError = '';
      try {
        JSON.parse('rule=x');
      } catch (error) {
        parseError = (error as Error).message;
      }
      const cases: [Promise<unknown>, string][] = [
        [invoke({ target: 'label-pod', alertFile: TERMINAL_SHELL, dist }), 'label-pod is not being served: start `npm run serve -- label-pod` (or --all), or give its URL'],
        [invoke({ target: 'Label Pod', alertFile: TERMINAL_SHELL, dist }), '"Label Pod" is neither a function name nor an http(s) URL'],
        [invoke({ target: stub.url, alertFile: notJson }), `${notJson} is not JSON: ${parseError}`],
      ];
      for (const [promise, message] of cases) {
        await assert.rejects(promise, (error: Error) => error instanceof InvokeError && error.message === message);
      }
      assert.equal(stub.received.length, 0);
      assert.ok(alertBody(TERMINAL_SHELL).toString('utf8').endsWith('}\n'));
    });
  });

  describe('npm run new', () => {
    let root: string;
    beforeEach(() => {
      root = scratchRoot();
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    it('refuses names that cannot be a function, saying why', () => {
      const cases: [string, string][] = [
        [
          'Quarantine_Node',
          `"Quarantine_Node" is not a function name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (it names the Function, its Service and its ServiceAccount)`,
        ],
        ['-x', `"-x" is not a function name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (it names the Function, its Service and its ServiceAccount)`],
        ['a'.repeat(64), `"${'a'.repeat(64)}" is not a function name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (it names the Function, its Service and its ServiceAccount)`],
        ['delete-pod', 'functions/delete-pod already exists'],
        ['forwarder-config', `"forwarder-config" ends with '-config', which names the configuration ConfigMap of a function`],
      ];
      for (const [name, message] of cases) {
        assert.equal(nameProblem(root, name), message, name);
        assert.throws(() => createFunction(root, name), (error: Error) => error instanceof InvalidFunctionNameError && error.message === message);
      }
      mkdirSync(path.join(root, 'test', 'unit'));
      writeFileSync(path.join(root, 'test', 'unit', 'scratch.test.ts'), '');
      assert.equal(nameProblem(root, 'scratch'), 'test/unit/scratch.test.ts already exists');
    });

    it('creates a handler that discovery and the build pick up with no other edit, and whose test passes', async () => {
      // When
      const files = createFunction(root, 'scratch-action');

      // Then
      assert.deepEqual(files, ['functions/scratch-action/action.ts', 'functions/scratch-action/index.ts', 'test/unit/scratch-action.test.ts']);
      const found = discoverFunctions(root).find((f) => f.name === 'scratch-action');
      assert.ok(found, 'discovered');
      assert.deepEqual(found.descriptor.permissions, [
        { apiGroup: '', resource: 'events', verbs: ['create'] },
        { apiGroup: '', resource: 'pods', verbs: ['get'] },
      ]);
      const built = await buildAll(root);
      assert.ok(built.bundles.some((b) => b.name === 'scratch-action'));
      assert.match(built.manifests.get('kubeless/scratch-action.yaml') ?? '', /kind: Function\n/);
      assert.ok(!existsSync(path.join(ROOT, 'functions', 'scratch-action')), 'nothing left in the real functions/');

      const mocha = spawnSync(
        process.execPath,
        [path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--require', 'test/unit/hooks.ts', path.join(root, 'test', 'unit', 'scratch-action.test.ts')],
        { cwd: ROOT, encoding: 'utf8', timeout: 50000 },
      );
      assert.equal(mocha.status, 0, `the generated test failed:\n${mocha.stdout}\n${mocha.stderr}`);
      assert.match(mocha.stdout, /2 passing/);
    });
  });

  describe('npm run serve', () => {
    let dist: string;
    let temp: string;
    let served: Served | undefined;
    let api: ListeningCluster | undefined;

    before(async () => {
      // Given the bundles and the runtime built into a scratch dist/
      dist = mkdtempSync(path.join(tmpdir(), 'falco-response-dist-'));
      mkdirSync(path.join(dist, 'functions'));
      mkdirSync(path.join(dist, 'runtime'));
      for (const f of discoverFunctions(ROOT)) {
        writeFileSync(path.join(dist, 'functions', `${f.name}.js`), (await bundle(f.name, f.entry, '')).code);
      }
      writeFileSync(path.join(dist, 'runtime', 'kubeless-runtime.js'), (await bundle('runtime', path.join(ROOT, 'runtime', 'main.ts'), '')).code);
    });
    after(() => rmSync(dist, { recursive: true, force: true }));
    beforeEach(() => {
      temp = mkdtempSync(path.join(tmpdir(), 'falco-response-serve-test-'));
    });
    afterEach(async () => {
      await served?.stop();
      await api?.close();
      served = undefined;
      api = undefined;
      rmSync(temp, { recursive: true, force: true });
    });

    /** A YAML kubeconfig, as kubectl writes it, for an API server on loopback. */
    function yamlKubeconfig(server: string): string {
      const file = path.join(temp, 'config');
      writeFileSync(
        file,
        [
          'apiVersion: v1',
          'kind: Config',
          'current-context: local',
          'clusters:',
          `  - name: local\n    cluster:\n      server: ${server}`,
          'contexts:',
          '  - name: local\n    context:\n      cluster: local\n      user: me',
          'users:',
          '  - name: me\n    user:\n      token: test-token',
          '',
        ].join('\n'),
      );
      return file;
    }

    it('runs a bundle in the Kubeless-compatible runtime as a child process that answers /healthz', async () => {
      // When
      served = await serve({ functions: ['delete-pod'], port: 0, dist, kubeconfig: yamlKubeconfig('http://127.0.0.1:9'), output: () => undefined, env: {} });

      // Then
      assert.deepEqual(served.functions.map((f) => f.name), ['delete-pod']);
      assert.deepEqual(await get(`${served.functions[0].url}healthz`), { status: 200, body: 'OK' });
      assert.deepEqual(JSON.parse(readFileSync(served.kubeconfig!, 'utf8')).users, [{ name: 'me', user: { token: 'test-token' } }]);
      assert.deepEqual(JSON.parse(readFileSync(path.join(dist, SERVE_STATE), 'utf8')), { functions: { 'delete-pod': served.functions[0].url } });

      // And when stopped, nothing is left
      const stopped = served;
      served = undefined;
      await stopped.stop();
      assert.ok(!existsSync(stopped.kubeconfig!));
      assert.ok(!existsSync(path.join(dist, SERVE_STATE)));
      await assert.rejects(get(`${stopped.functions[0].url}healthz`), /ECONNREFUSED/);
    });

    it('serves every action and the forwarder routed to them with --all, answering an alert end to end in dry run', async () => {
      // Given an API server on loopback where the pod is already gone
      const cluster = new MemoryCluster();
      api = await cluster.listen();
      const lines: string[] = [];
      served = await serve({
        functions: 'all',
        dryRun: true,
        port: 0,
        dist,
        kubeconfig: yamlKubeconfig(api.url),
        output: (source, line) => lines.push(`[${source}] ${line}`),
        env: {},
      });

      // When
      const forwarder = served.functions.find((f) => f.name === 'forwarder')!;
      const result = await invoke({ target: forwarder.url, alertFile: TERMINAL_SHELL });

      // Then
      assert.equal(result.status, 200, result.body);
      const answer = JSON.parse(result.body);
      assert.equal(answer.status, 'done');
      assert.deepEqual(
        answer.results.map((r: any) => [r.action, r.status, r.message]),
        [
          ['label-pod', 'skipped', "the pod 'kubecon' in the namespace 'default' is already gone"],
          ['network-isolate', 'skipped', "the pod 'kubecon' in the namespace 'default' is already gone"],
        ],
      );
      assert.deepEqual(
        cluster.take().map((c) => [c.method, c.path, c.authorization]),
        [
          ['GET', '/api/v1/namespaces/default/pods/kubecon', 'Bearer test-token'],
          ['GET', '/api/v1/namespaces/default/pods/kubecon', 'Bearer test-token'],
        ],
      );
      assert.ok(lines.some((l) => l.startsWith('[forwarder] ') && l.includes('"message":"alert forwarded"')));
    });

    it('converts a YAML kubeconfig with relative paths, and notes credentials the functions cannot use', () => {
      const file = path.join(temp, 'config');
      writeFileSync(
        file,
        'clusters:\n  - name: c\n    cluster:\n      server: https://127.0.0.1:6443\n      certificate-authority: ca.crt\n' +
          'users:\n  - name: u\n    user:\n      exec:\n        command: aws\n',
      );
      const { json, notes } = kubeconfigAsJson(file);
      assert.equal(JSON.parse(json).clusters[0].cluster['certificate-authority'], path.join(temp, 'ca.crt'));
      assert.deepEqual(notes, ['the user "u" authenticates with exec or auth-provider, which the functions do not run: give a token or a client certificate']);
    });

    it('refuses what it cannot serve, before starting anything', async () => {
      await assert.rejects(serve({ functions: ['kill-pod'], dist, output: () => undefined, env: {} }), (error: Error) =>
        error instanceof ServeError && /^no function named "kill-pod" in functions\/ \(there are (\S+, )*delete-pod, (\S+, )*forwarder[,)]/.test(error.message),
      );
      const empty = path.join(temp, 'dist');
      await assert.rejects(serve({ functions: ['delete-pod'], dist: empty, output: () => undefined, env: {} }), (error: Error) =>
        error instanceof ServeError && error.message.endsWith('kubeless-runtime.js is missing: run `npm run build` first'),
      );
      assert.throws(() => parseServeArgs([]), (error: Error) => error.message === 'usage: npm run serve -- <function>|--all [--dry-run] [--kubeconfig path] [--port 8080]');
      assert.throws(() => parseServeArgs(['--all', 'delete-pod']), ServeError);
      assert.throws(() => parseServeArgs(['delete-pod', '--port', 'x']), (error: Error) => error.message === '--port: expected a port number, got "x"');
      assert.deepEqual(parseServeArgs(['--all', '--dry-run', '--port', '9000']), { functions: 'all', dryRun: true, port: 9000 });
    });
  });
});
