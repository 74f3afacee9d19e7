/**
 * The runtime as a program: `node kubeless-runtime.js` with the Kubeless environment (MOD_NAME, FUNC_HANDLER,
 * KUBELESS_INSTALL_VOLUME, FUNC_PORT, ...). Prints one line with the port once it listens; drains on SIGTERM.
 */
import { HOST_ENV, SHUTDOWN_DELAY_ENV } from '../lib/kubeless';
import { printable } from '../lib/text';
import { startRuntime } from './server';

/** SHUTDOWN_DELAY_SECONDS, default 0 as Kubeless; a value that is not a number of seconds stops the runtime at start. */
function shutdownDelayMs(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 0;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new Error(`${SHUTDOWN_DELAY_ENV} must be a number of seconds, 0 or more, got '${printable(text.slice(0, 100))}'`);
  }
  return seconds * 1000;
}

async function main(): Promise<void> {
  const delayMs = shutdownDelayMs(process.env[SHUTDOWN_DELAY_ENV]);
  const host = process.env[HOST_ENV];
  const runtime = await startRuntime(process.env, host === undefined ? {} : { host });
  process.stdout.write(`${JSON.stringify({ message: 'listening', port: runtime.port, module: process.env.MOD_NAME })}\n`);
  // SIGTERM is how a pod is stopped: SHUTDOWN_DELAY_SECONDS of serving with readiness down, while the endpoint
  // leaves the Services, then the calls in flight end. SIGINT (a terminal) does not wait.
  let stopping = false;
  const stop = (waitMs: number) => () => {
    if (stopping) return;
    stopping = true;
    runtime.drain(waitMs).then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`the runtime failed to drain: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop(delayMs));
  process.on('SIGINT', stop(0));
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
