/**
 * Built function bundles served by the built Kubeless-compatible runtime under the Node of the Kubeless nodejs14
 * image, one process per function on a free loopback port (test/helpers/runtime-process.ts), tracked so that an
 * `after` hook can stop every one of them, also when a test failed half-way.
 */
import { kubelessEnv, nodeBinaries, spawnRuntime, type RuntimeProcess } from '../../helpers/runtime-process';
import { assertBundleIsDeployedOne, DIST_FUNCTIONS, RUNTIME_BUNDLE } from './deploy';
import { postAsSidekick, type FunctionAnswer } from './sidekick';

/** The Node of Kubeless's nodejs14 runtime image. */
export const KUBELESS_NODE_VERSION = 'v14.21.3';

/** The Node 14 binary (test/runtimes/install-node.sh installs it once into a cache). */
export function kubelessNode(): string {
  const node = nodeBinaries().find((binary) => binary.version === KUBELESS_NODE_VERSION);
  if (node === undefined) throw new Error(`test/runtimes/install-node.sh provided no Node ${KUBELESS_NODE_VERSION}`);
  return node.path;
}

const running = new Set<ServedFunction>();

export interface ServeOptions {
  /** The function's environment beyond Kubeless's own (KUBECONFIG or the in-cluster variables, parameters). */
  readonly env: Readonly<Record<string, string>>;
  /** FUNC_TIMEOUT in seconds (the generated Functions use 30). */
  readonly timeoutSeconds?: number;
}

/** One function in its own runtime process. */
export class ServedFunction {
  private constructor(
    readonly name: string,
    private readonly runtime: RuntimeProcess,
  ) {}

  /**
   * Starts `node14 dist/runtime/kubeless-runtime.js` serving dist/functions/<name>.js, with exactly Kubeless's
   * environment plus `options.env`: nothing leaks in from the test process (no KUBECONFIG by accident).
   */
  static async start(name: string, options: ServeOptions): Promise<ServedFunction> {
    assertBundleIsDeployedOne(name);
    const runtime = await spawnRuntime({
      node: kubelessNode(),
      runtimeFile: RUNTIME_BUNDLE,
      env: {
        ...kubelessEnv(name, DIST_FUNCTIONS),
        ...(options.timeoutSeconds === undefined ? {} : { FUNC_TIMEOUT: String(options.timeoutSeconds) }),
        ...options.env,
      },
    });
    const served = new ServedFunction(name, runtime);
    running.add(served);
    return served;
  }

  get url(): string {
    return `http://127.0.0.1:${this.runtime.port}/`;
  }

  /** What the process printed: access log, the runner's JSON lines, any stack. */
  get logs(): string {
    return this.runtime.stdout() + this.runtime.stderr();
  }

  /** POSTs an alert as Falcosidekick does, with `Authorization: <authorization>` when given. */
  post(alert: string, authorization?: string): Promise<FunctionAnswer> {
    return postAsSidekick(this.runtime.port, alert, authorization);
  }

  /** SIGTERM (the runtime closes gracefully), SIGKILL if it is still there after 3 s. */
  async stop(): Promise<void> {
    running.delete(this);
    const timer = setTimeout(() => {
      this.runtime.stop('SIGKILL').catch(() => undefined); // the SIGTERM below reports the failure
    }, 3000);
    await this.runtime.stop('SIGTERM');
    clearTimeout(timer);
  }

  /** For the exit handler: no waiting. */
  kill(): void {
    this.runtime.child.kill('SIGKILL');
  }
}

/** Stops every function process still running: for `after` hooks, so no child outlives a failed test. */
export async function stopAllFunctions(): Promise<void> {
  await Promise.all([...running].map((f) => f.stop()));
}

// Last resort if mocha exits without running the after hooks (an uncaught error, Ctrl-C).
process.on('exit', () => {
  for (const f of running) f.kill();
});
