/**
 * Built function bundles served by the built Kubeless-compatible runtime, under the Node of the Kubeless nodejs14
 * image, one child process per function, on a free loopback port.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import * as path from 'path';
import { assertBundleIsDeployedOne, DIST_FUNCTIONS, ROOT, RUNTIME_BUNDLE } from './deploy';
import { postAsSidekick, type FunctionAnswer } from './sidekick';

/** The Node of Kubeless's nodejs14 runtime image. */
export const KUBELESS_NODE_VERSION = '14.21.3';

let node14: string | undefined;

/** The Node 14 binary (test/runtimes/install-node.sh installs it once into a cache). */
export function kubelessNode(): string {
  node14 ??= execFileSync('bash', [path.join(ROOT, 'test', 'runtimes', 'install-node.sh'), KUBELESS_NODE_VERSION], { encoding: 'utf8' }).trim();
  return node14;
}

const running = new Set<ServedFunction>();
const children = new Set<ChildProcess>();

export interface ServeOptions {
  /** The function's environment beyond the runtime's own (KUBECONFIG or the in-cluster variables, parameters). */
  readonly env: Readonly<Record<string, string>>;
  /** FUNC_TIMEOUT in seconds (the generated Functions use 30). */
  readonly timeoutSeconds?: number;
}

/** One function in its own runtime process. */
export class ServedFunction {
  private output = '';

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  /**
   * Starts `node14 dist/runtime/kubeless-runtime.js` serving dist/functions/<name>.js. The environment is exactly
   * what Kubeless sets plus `options.env`: nothing leaks in from the test process (no KUBECONFIG by accident).
   */
  static async start(name: string, options: ServeOptions): Promise<ServedFunction> {
    assertBundleIsDeployedOne(name);
    const child = spawn(kubelessNode(), [RUNTIME_BUNDLE], {
      env: {
        MOD_NAME: name,
        FUNC_HANDLER: 'handler',
        FUNC_TIMEOUT: String(options.timeoutSeconds ?? 30),
        FUNC_RUNTIME: 'nodejs14',
        FUNC_MEMORY_LIMIT: '128Mi',
        FUNC_PORT: '0',
        FUNC_HOST: '127.0.0.1',
        KUBELESS_INSTALL_VOLUME: DIST_FUNCTIONS,
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: the runtime did not listen within 10 s\n${output}`)), 10000);
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const match = /"message":"listening","port":(\d+)/.exec(output);
        if (match !== null) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name}: the runtime exited (${code ?? signal}) before listening\n${output}`));
      });
    });
    const served = new ServedFunction(name, child, `http://127.0.0.1:${port}/`);
    served.output = output;
    child.stdout.on('data', (chunk: Buffer) => (served.output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (served.output += chunk.toString('utf8')));
    running.add(served);
    children.add(child);
    child.once('exit', () => children.delete(child));
    return served;
  }

  /** What the process printed: access log, the runner's JSON lines, any stack. */
  get logs(): string {
    return this.output;
  }

  /** POSTs an alert as Falcosidekick does. */
  post(alert: string, timeoutMs?: number): Promise<FunctionAnswer> {
    return postAsSidekick(this.url, alert, timeoutMs);
  }

  /** SIGTERM (the runtime closes gracefully), SIGKILL if it is still there after 3 s. */
  async stop(): Promise<void> {
    running.delete(this);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

/** Stops every function process still running: for `after` hooks, so no child outlives a failed test. */
export async function stopAllFunctions(): Promise<void> {
  await Promise.all([...running].map((f) => f.stop()));
}

// Last resort if mocha exits without running the after hooks (uncaught error, Ctrl-C).
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
