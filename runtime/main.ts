/**
 * The runtime as a program: `node kubeless-runtime.js` with the Kubeless environment (MOD_NAME, FUNC_HANDLER,
 * KUBELESS_INSTALL_VOLUME, FUNC_PORT, ...). Prints one line with the port once it listens; drains on SIGTERM.
 */
import { startRuntime } from './server';

startRuntime(process.env, process.env.FUNC_HOST === undefined ? {} : { host: process.env.FUNC_HOST }).then(
  (runtime) => {
    process.stdout.write(`${JSON.stringify({ message: 'listening', port: runtime.port, module: process.env.MOD_NAME })}\n`);
    // SIGTERM is how a pod is stopped: SHUTDOWN_DELAY_SECONDS (default 0, as Kubeless) of serving with readiness
    // down, while the endpoint leaves the Services, then the calls in flight end. SIGINT (a terminal) does not wait.
    const delayMs = (Number(process.env.SHUTDOWN_DELAY_SECONDS ?? '0') || 0) * 1000;
    let stopping = false;
    const stop = (waitMs: number) => () => {
      if (stopping) return;
      stopping = true;
      void runtime.drain(waitMs).then(() => process.exit(0));
    };
    process.on('SIGTERM', stop(delayMs));
    process.on('SIGINT', stop(0));
  },
  (error: Error) => {
    process.stderr.write(`${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
