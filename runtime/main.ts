/**
 * The runtime as a program: `node kubeless-runtime.js` with the Kubeless environment (MOD_NAME, FUNC_HANDLER,
 * KUBELESS_INSTALL_VOLUME, FUNC_PORT, ...). Prints one line with the port once it listens; closes on SIGTERM.
 */
import { startRuntime } from './server';

startRuntime(process.env, process.env.FUNC_HOST === undefined ? {} : { host: process.env.FUNC_HOST }).then(
  (runtime) => {
    process.stdout.write(`${JSON.stringify({ message: 'listening', port: runtime.port, module: process.env.MOD_NAME })}\n`);
    const stop = () => {
      // close() ends idle connections at once; those with a request at work get 10 s to answer.
      runtime.close().then(
        () => process.exit(0),
        () => process.exit(0),
      );
      setTimeout(() => process.exit(0), 10000).unref();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  },
  (error: Error) => {
    process.stderr.write(`${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
