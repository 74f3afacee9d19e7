import { strict as assert } from 'assert';
import nock from 'nock';
import * as path from 'path';
import action from '../../functions/delete-pod/action';
import forwarder from '../../functions/forwarder/action';
import { isAuthorized } from '../../lib/auth';
import { forwarderHandler } from '../../lib/forwarder/runner';
import type { Kube } from '../../lib/kube/client';
import { memoryLogger } from '../../lib/log';
import { podActionHandler } from '../../lib/runner';
import { alert, FIXTURES, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { startStub } from '../helpers/http-stub';

const SECRET = 's3cr3t-shared-between-forwarder-and-actions';
const UNAUTHORIZED =
  'unauthorized: this function requires the shared secret (a header `Authorization: Bearer <secret>`) and the call did not carry it';

/** A Kube that counts calls: an unauthorized call must make none. */
function countingKube(): Kube & { calls: number } {
  const kube = {
    calls: 0,
    request<T>(): Promise<T> {
      kube.calls++;
      return Promise.reject(new Error('no Kubernetes call expected'));
    },
  };
  return kube;
}

function withAuthorization(data: unknown, authorization: string | undefined) {
  const built = kubelessEvent(data);
  const headers = authorization === undefined ? {} : { authorization };
  return { ...built, event: { ...built.event, extensions: { ...built.event.extensions, request: { headers } } } };
}

describe('the optional shared secret (lib/auth.ts)', () => {
  it('lets every call through when no secret is configured', () => {
    assert.equal(isAuthorized(withAuthorization({}, undefined).event, undefined), true);
  });

  it('accepts only the exact bearer header', () => {
    const cases: [string | undefined, boolean][] = [
      [`Bearer ${SECRET}`, true],
      [undefined, false],
      ['', false],
      [SECRET, false],
      [`bearer ${SECRET}`, false],
      [`Bearer ${SECRET}x`, false],
      [`Bearer ${SECRET.slice(0, -1)}`, false],
    ];
    for (const [header, expected] of cases) {
      assert.equal(isAuthorized(withAuthorization({}, header).event, SECRET), expected, String(header));
    }
  });

  it('makes a pod action answer 401 without decoding the alert or calling Kubernetes, and log it', async () => {
    // Given
    const kube = countingKube();
    const log = memoryLogger();
    const handler = podActionHandler(action, { env: { INBOUND_SECRET: SECRET }, kube, log });
    const { event, response } = withAuthorization(alert('terminal-shell'), 'Bearer guessed');

    // When
    const answer = await handler(event, kubelessContext());

    // Then
    assert.equal(response.statusCode, 401);
    assert.deepEqual(answer, { status: 'unauthorized', error: UNAUTHORIZED });
    assert.equal(kube.calls, 0);
    assert.equal(log.lines[0].outcome, 'unauthorized');
    assert.equal(log.lines[0].rule, null, 'the alert of an unauthorized caller is not even decoded');
  });

  it('makes the forwarder send the secret to the actions, and refuse callers without its own', async () => {
    nock.enableNetConnect('127.0.0.1');
    const action = await startStub(() => ({ status: 200, body: { status: 'done', message: 'ok' } }));
    try {
      const env = {
        ROUTES_FILE: path.join(FIXTURES, 'routes', 'fan-out.json'),
        ACTION_ENDPOINTS: JSON.stringify({ 'label-pod': action.url, 'network-isolate': action.url, 'delete-pod': action.url }),
        OUTBOUND_SECRET: SECRET,
        INBOUND_SECRET: 'for-the-forwarder-itself',
      };
      const handler = forwarderHandler(forwarder, { env, log: memoryLogger() });
      try {
        // A caller without the forwarder's own secret is refused, and nothing is invoked
        const refused = withAuthorization(alert('terminal-shell'), undefined);
        assert.deepEqual(await handler(refused.event, kubelessContext()), { status: 'unauthorized', error: UNAUTHORIZED });
        assert.equal(refused.response.statusCode, 401);
        assert.equal(action.received.length, 0);

        // A caller with it gets through, and every action receives the shared secret
        const allowed = withAuthorization(alert('terminal-shell'), 'Bearer for-the-forwarder-itself');
        const answer = await handler(allowed.event, kubelessContext());
        assert.equal(answer.status, 'done');
        assert.equal(action.received.length, 3);
        for (const request of action.received) assert.equal(request.headers.authorization, `Bearer ${SECRET}`);
      } finally {
        handler.close();
      }
    } finally {
      await action.close();
      nock.disableNetConnect();
    }
  });
});
