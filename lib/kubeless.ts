/**
 * The contract between a function's process and what starts it (shared/PROTOCOLS.md section 1): the port, and the
 * environment Kubeless's controller gives the runtime container. Our runtime (runtime/) reads it, the standalone
 * target and `npm run serve` write it, the tests and the bench start runtimes with it. It imports nothing, so that
 * the runtime bundle takes it as it is.
 */

/** The port Kubeless serves a function on and Falcosidekick calls (`kubeless.port`), in the pod and on its Service. */
export const FUNCTION_PORT = 8080;

/** Where Kubeless mounts the code (KUBELESS_INSTALL_VOLUME's default). */
export const INSTALL_VOLUME = '/kubeless';

/** The name every bundle exports its handler under: the handler string is `<MOD_NAME>.handler`. */
export const HANDLER_EXPORT = 'handler';

/** Not Kubeless's: how long our runtime keeps serving after SIGTERM, with readiness down (default 0, as Kubeless). */
export const SHUTDOWN_DELAY_ENV = 'SHUTDOWN_DELAY_SECONDS';

/** Not Kubeless's: the address our runtime listens on (default every address, as Kubeless). */
export const HOST_ENV = 'FUNC_HOST';

/** What a runtime process is started with. */
export interface RuntimeEnvSettings {
  /** The module `<installVolume>/<modName>.js`. */
  readonly modName: string;
  readonly installVolume: string;
  readonly timeoutSeconds: number;
  /** `nodejs14`: what the context reports, the Node that runs. */
  readonly runtime: string;
  /** The container's memory limit, e.g. `128Mi`; left unset when absent. */
  readonly memoryLimit?: string;
  /** 0: any free port, which the runtime prints once it listens. */
  readonly port: number;
  readonly host?: string;
  readonly shutdownDelaySeconds?: number;
}

/** FUNC_PORT and FUNC_HOST: where the runtime listens, to move an environment written for a pod elsewhere. */
export function listenEnv(port: number, host: string): Record<string, string> {
  return { FUNC_PORT: String(port), [HOST_ENV]: host };
}

/** The environment of a runtime process, in the order Kubeless's controller writes its variables, ours last. */
export function runtimeEnv(s: RuntimeEnvSettings): Record<string, string> {
  return {
    FUNC_HANDLER: HANDLER_EXPORT,
    MOD_NAME: s.modName,
    FUNC_TIMEOUT: String(s.timeoutSeconds),
    FUNC_RUNTIME: s.runtime,
    ...(s.memoryLimit === undefined ? {} : { FUNC_MEMORY_LIMIT: s.memoryLimit }),
    FUNC_PORT: String(s.port),
    KUBELESS_INSTALL_VOLUME: s.installVolume,
    NODE_PATH: `${s.installVolume}/node_modules`,
    ...(s.host === undefined ? {} : { [HOST_ENV]: s.host }),
    ...(s.shutdownDelaySeconds === undefined ? {} : { [SHUTDOWN_DELAY_ENV]: String(s.shutdownDelaySeconds) }),
  };
}

/** The Kubeless settings as a runtime reads them, with Kubeless's defaults. */
export interface KubelessSettings {
  readonly modName: string;
  readonly funcHandler: string;
  readonly timeoutSeconds: number;
  readonly port: number;
  readonly runtime: string;
  readonly memoryLimit: string;
  /** REQ_MB_LIMIT, in bytes. */
  readonly bodyLimitBytes: number;
  readonly installVolume: string;
}

/** Reads MOD_NAME, FUNC_HANDLER, FUNC_TIMEOUT, FUNC_PORT, FUNC_RUNTIME, FUNC_MEMORY_LIMIT, REQ_MB_LIMIT, KUBELESS_INSTALL_VOLUME. */
export function readKubelessEnv(env: Readonly<Record<string, string | undefined>>): KubelessSettings {
  const modName = env.MOD_NAME ?? '';
  const funcHandler = env.FUNC_HANDLER ?? '';
  if (modName === '' || funcHandler === '') throw new Error('MOD_NAME and FUNC_HANDLER must be set');
  return {
    modName,
    funcHandler,
    timeoutSeconds: Number(env.FUNC_TIMEOUT ?? '180') || 180,
    port: Number(env.FUNC_PORT ?? String(FUNCTION_PORT)),
    runtime: env.FUNC_RUNTIME ?? '',
    memoryLimit: env.FUNC_MEMORY_LIMIT ?? '',
    bodyLimitBytes: (Number(env.REQ_MB_LIMIT ?? '1') || 1) * 1024 * 1024,
    installVolume: env.KUBELESS_INSTALL_VOLUME ?? INSTALL_VOLUME,
  };
}
