/**
 * `npm run serve -- <function>|--all [--dry-run] [--kubeconfig path] [--port 8080]`: runs built bundles
 * (dist/functions/<name>.js) in the Kubeless-compatible runtime (dist/runtime/kubeless-runtime.js), one child process
 * per function, on 127.0.0.1 only, with the environment the generated Function would give it.
 *
 * `--all` serves every action on a free port and the forwarder on `--port`, routed to them through ACTION_ENDPOINTS.
 * `--dry-run` sets DRY_RUN=true: the actions check everything and change nothing. The bundles read only JSON
 * kubeconfigs, so a YAML one (`--kubeconfig`, else $KUBECONFIG, else ~/.kube/config) is converted to a temporary JSON
 * file first. Variables already set in the shell for a declared parameter or config file (e.g. ROUTES_FILE) win.
 */
import { spawn, type ChildProcess } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { homedir, tmpdir } from 'os';
import * as path from 'path';
import { parse } from 'yaml';
import { FUNCTION_PORT, runtimeEnv } from '../lib/kubeless';
import { CONFIG_FILE, loadConfig, parameterEnv } from './config';
import { discoverFunctions, type DiscoveredFunction } from './discover';
import { DIST, ROOT } from './main';

/** Where `serve` says which function listens where, for `npm run invoke -- <name>`. */
export const SERVE_STATE = 'serve.json';
const FORWARDER = 'forwarder';
const HOST = '127.0.0.1';

export interface ServeOptions {
  /** The function names, or every function. */
  readonly functions: readonly string[] | 'all';
  readonly dryRun?: boolean;
  /** A kubeconfig in YAML or JSON; when absent, $KUBECONFIG or ~/.kube/config if it exists. */
  readonly kubeconfig?: string;
  /** The port of the one function, or of the forwarder with `all`; 0 picks a free one. */
  readonly port?: number;
  readonly root?: string;
  /** Holds functions/<name>.js and runtime/kubeless-runtime.js. */
  readonly dist?: string;
  /** The shell's environment (overrides of declared variables are taken from it). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Each line a child writes, and serve's own notes. */
  readonly output?: (source: string, line: string) => void;
}

export interface ServedFunction {
  readonly name: string;
  readonly url: string;
  readonly port: number;
}

export interface Served {
  readonly functions: readonly ServedFunction[];
  readonly kubeconfig: string | undefined;
  /** Resolves when a child exits on its own (a crash): the rest should then be stopped. */
  readonly exited: Promise<string>;
  stop(): Promise<void>;
}

export class ServeError extends Error {
  override name = 'ServeError';
}

/** Kubeconfig fields holding file paths, which must stay valid once the JSON copy lives elsewhere. */
const PATH_FIELDS: readonly [string, string, readonly string[]][] = [
  ['clusters', 'cluster', ['certificate-authority']],
  ['users', 'user', ['client-certificate', 'client-key', 'tokenFile']],
];

/**
 * A YAML (or JSON) kubeconfig as the JSON the bundles read (lib/kube/connection.ts), with relative file paths made
 * absolute. Returns notes on what the bundles cannot use (exec and auth-provider credentials).
 */
export function kubeconfigAsJson(file: string): { json: string; notes: string[] } {
  let config: Record<string, unknown>;
  try {
    config = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new ServeError(`cannot read the kubeconfig ${file}: ${(error as Error).message}`);
  }
  if (typeof config !== 'object' || config === null) throw new ServeError(`the kubeconfig ${file} holds no object`);
  const dir = path.dirname(path.resolve(file));
  const notes: string[] = [];
  for (const [list, key, fields] of PATH_FIELDS) {
    const entries = config[list];
    if (!Array.isArray(entries)) continue;
    for (const entry of entries as Record<string, Record<string, unknown> | undefined>[]) {
      const inner = entry[key];
      if (inner === undefined) continue;
      for (const field of fields) {
        const value = inner[field];
        if (typeof value === 'string' && !path.isAbsolute(value)) inner[field] = path.join(dir, value);
      }
      if (key === 'user' && (inner.exec !== undefined || inner['auth-provider'] !== undefined)) {
        notes.push(`the user ${JSON.stringify(entry.name)} authenticates with exec or auth-provider, which the functions do not run: give a token or a client certificate`);
      }
    }
  }
  return { json: `${JSON.stringify(config, null, 2)}\n`, notes };
}

function defaultKubeconfig(env: Readonly<Record<string, string | undefined>>): string {
  const fromEnv = env.KUBECONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv.split(path.delimiter)[0];
  return path.join(homedir(), '.kube', 'config');
}

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly port: number;
  readonly exited: Promise<void>;
}

/** Starts one runtime process and resolves with the port it printed in its 'listening' line. */
function startRuntime(name: string, runtimeFile: string, env: Record<string, string>, output: (source: string, line: string) => void): Promise<Child> {
  const child = spawn(process.execPath, [runtimeFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let port: number | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<Child>((resolve, reject) => {
    const lines = (stream: NodeJS.ReadableStream, isOut: boolean) => {
      let rest = '';
      stream.on('data', (chunk: Buffer) => {
        rest += chunk.toString('utf8');
        const parts = rest.split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) {
          if (isOut && port === undefined) {
            const listening = listeningPort(line);
            if (listening !== undefined) {
              port = listening;
              resolve({ name, process: child, port, exited });
              continue;
            }
          }
          output(name, line);
        }
      });
    };
    lines(child.stdout, true);
    lines(child.stderr, false);
    exited.then(() => {
      if (port === undefined) reject(new ServeError(`${name} exited before it listened (code ${child.exitCode}, signal ${child.signalCode})`));
    }, reject);
  });
}

function listeningPort(line: string): number | undefined {
  try {
    const parsed = JSON.parse(line) as { message?: unknown; port?: unknown };
    return parsed.message === 'listening' && typeof parsed.port === 'number' ? parsed.port : undefined;
  } catch {
    return undefined;
  }
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), 5000);
  await child.exited;
  clearTimeout(timer);
}

/** Serves the functions; the caller stops them with `stop()`. */
export async function serve(options: ServeOptions): Promise<Served> {
  const root = options.root ?? ROOT;
  const dist = options.dist ?? DIST;
  const shell = options.env ?? process.env;
  const output = options.output ?? ((source: string, line: string) => process.stdout.write(`[${source}] ${line}\n`));
  const config = loadConfig(path.join(root, CONFIG_FILE));
  const discovered = discoverFunctions(root);
  const byName = new Map(discovered.map((f) => [f.name, f]));
  const wanted = options.functions === 'all' ? discovered.map((f) => f.name) : [...options.functions];
  if (wanted.length === 0) throw new ServeError('no function to serve');
  for (const name of wanted) {
    if (!byName.has(name)) throw new ServeError(`no function named ${JSON.stringify(name)} in functions/ (there are ${discovered.map((f) => f.name).join(', ')})`);
  }
  const runtimeFile = path.join(dist, 'runtime', 'kubeless-runtime.js');
  for (const file of [runtimeFile, ...wanted.map((n) => path.join(dist, 'functions', `${n}.js`))]) {
    if (!existsSync(file)) throw new ServeError(`${path.relative(process.cwd(), file)} is missing: run \`npm run build\` first`);
  }

  const temp = mkdtempSync(path.join(tmpdir(), 'falco-response-serve-'));
  const children: Child[] = [];
  const stateFile = path.join(dist, SERVE_STATE);
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    rmSync(temp, { recursive: true, force: true });
    if (existsSync(stateFile)) rmSync(stateFile);
  };
  try {
    const kubeconfigFile = options.kubeconfig ?? defaultKubeconfig(shell);
    let kubeconfig: string | undefined;
    if (existsSync(kubeconfigFile)) {
      const converted = kubeconfigAsJson(kubeconfigFile);
      kubeconfig = path.join(temp, 'kubeconfig.json');
      writeFileSync(kubeconfig, converted.json, { mode: 0o600 });
      converted.notes.forEach((note) => output('serve', `kubeconfig: ${note}`));
    } else if (options.kubeconfig !== undefined) {
      throw new ServeError(`the kubeconfig ${options.kubeconfig} does not exist`);
    } else {
      output('serve', `no kubeconfig at ${kubeconfigFile}: the actions will answer 500 until one is given (--kubeconfig)`);
    }

    const envOf = (f: DiscoveredFunction, port: number, extra: Record<string, string> = {}): Record<string, string> => {
      const declared: Record<string, string> = { ...parameterEnv(f.descriptor, config) };
      for (const file of f.descriptor.configFiles ?? []) {
        const written = path.join(temp, f.name, file.name);
        mkdirSync(path.dirname(written), { recursive: true });
        writeFileSync(written, file.content);
        declared[file.env] = written;
      }
      if (f.descriptor.namespaceEnv !== undefined) declared[f.descriptor.namespaceEnv] = config.namespace;
      // The shell may override what the function declares (a parameter, a config file's path), nothing else.
      for (const name of Object.keys(declared)) {
        const value = shell[name];
        if (value !== undefined && value !== '') declared[name] = value;
      }
      return {
        PATH: shell.PATH ?? '',
        ...runtimeEnv({
          modName: f.name,
          installVolume: path.join(dist, 'functions'),
          timeoutSeconds: config.timeoutSeconds,
          runtime: config.runtime,
          memoryLimit: config.resources.limits.memory ?? '',
          port,
          host: HOST,
        }),
        ...declared,
        ...(options.dryRun === true ? { DRY_RUN: 'true' } : {}),
        ...(kubeconfig === undefined ? {} : { KUBECONFIG: kubeconfig }),
        ...extra,
      };
    };

    const port = options.port ?? FUNCTION_PORT;
    const routed = wanted.includes(FORWARDER) && wanted.length > 1;
    const actions = routed ? wanted.filter((n) => n !== FORWARDER) : wanted;
    // With the forwarder, every action takes a free port and the forwarder the given one; alone, a function takes it.
    const started = await Promise.all(
      actions.map((name) => startRuntime(name, runtimeFile, envOf(byName.get(name)!, routed || actions.length > 1 ? 0 : port), output)),
    );
    children.push(...started);
    if (routed) {
      const endpoints = Object.fromEntries(started.map((c) => [c.name, `http://${HOST}:${c.port}/`]));
      const forwarder = byName.get(FORWARDER)!;
      children.push(
        await startRuntime(FORWARDER, runtimeFile, envOf(forwarder, port, { ACTION_ENDPOINTS: JSON.stringify(endpoints), ACTIONS_NAMESPACE: '' }), output),
      );
    }
    const functions = children.map((c) => ({ name: c.name, port: c.port, url: `http://${HOST}:${c.port}/` }));
    writeFileSync(stateFile, `${JSON.stringify({ functions: Object.fromEntries(functions.map((f) => [f.name, f.url])) }, null, 2)}\n`);
    const exited = Promise.race(children.map((c) => c.exited.then(() => c.name)));
    return { functions, kubeconfig, exited, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

const USAGE = `usage: npm run serve -- <function>|--all [--dry-run] [--kubeconfig path] [--port ${FUNCTION_PORT}]`;

export function parseServeArgs(argv: readonly string[]): ServeOptions {
  const names: string[] = [];
  let all = false;
  let dryRun = false;
  let kubeconfig: string | undefined;
  let port: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--all') all = true;
    else if (arg === '--dry-run') dryRun = true;
    else if (arg === '--kubeconfig' || arg === '--port') {
      const value = argv[++i];
      if (value === undefined) throw new ServeError(`${arg} needs a value\n${USAGE}`);
      if (arg === '--kubeconfig') kubeconfig = path.resolve(value);
      else {
        port = Number(value);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ServeError(`--port: expected a port number, got ${JSON.stringify(value)}`);
      }
    } else if (arg.startsWith('-')) throw new ServeError(`unknown option ${arg}\n${USAGE}`);
    else names.push(arg);
  }
  if (all === (names.length > 0)) throw new ServeError(USAGE);
  return {
    functions: all ? 'all' : names,
    dryRun,
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
    ...(port === undefined ? {} : { port }),
  };
}

async function main(): Promise<void> {
  const options = parseServeArgs(process.argv.slice(2));
  const served = await serve(options);
  const note = (line: string) => process.stdout.write(`[serve] ${line}\n`);
  for (const f of served.functions) note(`${f.name.padEnd(18)} ${f.url}${options.dryRun === true ? ' (dry run)' : ''}`);
  const first = served.functions.find((f) => f.name === FORWARDER) ?? served.functions[0];
  note(`try: npm run invoke -- ${first.name} test/fixtures/alerts/terminal-shell.json   (Ctrl-C stops everything)`);
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    served.stop().then(
      () => process.exit(code),
      (error: unknown) => {
        note(`stopping failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  served.exited.then(
    (name) => {
      if (stopping) return;
      note(`${name} exited: stopping the others`);
      stop(1);
    },
    (error: unknown) => {
      note(`watching the functions failed: ${String(error)}`);
      stop(1);
    },
  );
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`npm run serve: ${error.message}\n`);
    process.exit(1);
  });
}
