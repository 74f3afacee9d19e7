/** The Kubeless runtime contract (shared/PROTOCOLS.md section 1) as lib/kubeless.ts states it for every side. */
import { strict as assert } from 'assert';
import { readKubelessEnv, runtimeEnv } from '../../lib/kubeless';

describe('lib/kubeless: the environment a runtime is started with (PROTOCOLS section 1)', () => {
  it("writes Kubeless's variables in its controller's order, ours last", () => {
    // Given / When
    const env = runtimeEnv({
      modName: 'delete-pod',
      installVolume: '/kubeless',
      timeoutSeconds: 30,
      runtime: 'nodejs14',
      memoryLimit: '128Mi',
      port: 8080,
      host: '127.0.0.1',
      shutdownDelaySeconds: 5,
    });

    // Then
    assert.deepEqual(Object.entries(env), [
      ['FUNC_HANDLER', 'handler'],
      ['MOD_NAME', 'delete-pod'],
      ['FUNC_TIMEOUT', '30'],
      ['FUNC_RUNTIME', 'nodejs14'],
      ['FUNC_MEMORY_LIMIT', '128Mi'],
      ['FUNC_PORT', '8080'],
      ['KUBELESS_INSTALL_VOLUME', '/kubeless'],
      ['NODE_PATH', '/kubeless/node_modules'],
      ['FUNC_HOST', '127.0.0.1'],
      ['SHUTDOWN_DELAY_SECONDS', '5'],
    ]);
  });

  it('reads back what it writes', () => {
    const env = runtimeEnv({ modName: 'forwarder', installVolume: '/tmp/functions', timeoutSeconds: 12, runtime: 'nodejs12', memoryLimit: '64Mi', port: 0 });
    assert.deepEqual(readKubelessEnv(env), {
      modName: 'forwarder',
      funcHandler: 'handler',
      timeoutSeconds: 12,
      port: 0,
      runtime: 'nodejs12',
      memoryLimit: '64Mi',
      bodyLimitBytes: 1024 * 1024,
      installVolume: '/tmp/functions',
    });
  });

  it("takes Kubeless's defaults for what is unset: 180 s, port 8080, 1 MB of body, /kubeless", () => {
    assert.deepEqual(readKubelessEnv({ MOD_NAME: 'm', FUNC_HANDLER: 'h' }), {
      modName: 'm',
      funcHandler: 'h',
      timeoutSeconds: 180,
      port: 8080,
      runtime: '',
      memoryLimit: '',
      bodyLimitBytes: 1024 * 1024,
      installVolume: '/kubeless',
    });
    assert.equal(readKubelessEnv({ MOD_NAME: 'm', FUNC_HANDLER: 'h', REQ_MB_LIMIT: '3' }).bodyLimitBytes, 3 * 1024 * 1024);
  });

  it('refuses to start without MOD_NAME or FUNC_HANDLER', () => {
    for (const env of [{ FUNC_HANDLER: 'handler' }, { MOD_NAME: 'm' }, { MOD_NAME: '', FUNC_HANDLER: 'handler' }]) {
      assert.throws(() => readKubelessEnv(env), new Error('MOD_NAME and FUNC_HANDLER must be set'));
    }
  });
});
