import { strict as assert } from 'assert';
import nock from 'nock';
import * as path from 'path';
import action from '../../functions/delete-pod/action';
import isolate from '../../functions/network-isolate/action';
import forwarder from '../../functions/forwarder/router';
import { isAuthorized } from '../../lib/auth';
import { forwarderHandler } from '../../lib/router/runner';
import type { Kube } from '../../lib/kube/client';
import { memoryLogger } from '../../lib/log';
import { podActionHandler } from '../helpers/recorded-handler';
import { alert, FIXTURES, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { startStub } from '../helpers/http-stub';

const SECRET = 's3cr3t-shared-between-forwarder-and-actions';
const UNAUTHORIZED =
  'unauthorized: this function requires the shared secret (a header `Authorization: Bearer <secret>`) and the call did not carry it';

const REFUSED_401 = 'calls refused with 401: they did not carry the shared secret (INBOUND_SECRET)';
const REFUSED_UNUSABLE = 'calls refused with 500: the shared secret is unusable (INBOUND_SECRET)';

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

  it('accepts only the secret as bearer token, the scheme in any case and after one or more spaces (RFC 7235 section 2.1)', () => {
    const cases: [string | undefined, boolean][] = [
      [`Bearer ${SECRET}`, true],
      [undefined, false],
      ['', false],
      [SECRET, false],
      [`bearer ${SECRET}`, true],
      [`BEARER ${SECRET}`, true],
      [`Bearer   ${SECRET}`, true],
      [`Bearer\t${SECRET}`, false],
      [`Basic ${SECRET}`, false],
      [`Bearer${SECRET}`, false],
      ['Bearer', false],
      ['Bearer ', false],
      [`Bearer ${SECRET} `, false],
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
    assert.deepEqual(log.lines.map((l) => [l.level, l.message, l.refused]), [['warn', REFUSED_401, 1]]);
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

const NO_SECRET = 'no shared secret: every caller is accepted (the Secret or its key does not exist)';
const UNUSABLE_SECRET = 'the shared secret is unusable: the function refuses every call';
const REFUSED_EVERY_CALL = { status: 'failed', error: "the function refuses every call: its configuration is broken (its log says what to fix)" };
const CANNOT_START = 'the function cannot start: every call will fail until the configuration is fixed';
const TOKEN_RULE =
  "a bearer token (RFC 6750: letters, digits and - . _ ~ + /, optionally ending with '='), such as the output of `openssl rand -hex 32`";
const blankProblem = (what: string) =>
  `INBOUND_SECRET is set but ${what}: an empty secret would let every caller in, so the function refuses every call; put ${TOKEN_RULE} in the Secret falco-response-shared-secret, or delete the key to run without a secret`;
const badCharacterProblem = (variable: string, position: number, kind: string) =>
  `${variable} is not ${TOKEN_RULE}: character ${position} is ${kind}; a header cannot carry it, so the function refuses every call until the Secret falco-response-shared-secret is fixed`;

describe('refused callers cannot flood the log: at most one line a second about them, with their count (lib/auth.ts)', () => {
  /** A clock the test moves: the counted line is written at most once per second of it. */
  const clock = () => {
    const c = { at: 0, now: () => c.at };
    return c;
  };
  const call = (handler: (event: unknown, context: unknown) => Promise<unknown>, authorization: string | undefined) =>
    handler(withAuthorization(alert('terminal-shell'), authorization).event, kubelessContext());

  it('pod action: 1000 calls without the secret write one line at once, then one with the count a second later', async () => {
    // Given
    const time = clock();
    const log = memoryLogger();
    const handler = podActionHandler(action, { env: { INBOUND_SECRET: SECRET }, kube: countingKube(), log, now: time.now });

    // When
    for (let i = 0; i < 1000; i++) await call(handler, i % 2 === 0 ? undefined : 'Bearer guessed');
    const burst = log.lines.map((l) => [l.level, l.message, l.refused]);
    time.at = 1000;
    await call(handler, undefined);

    // Then
    assert.deepEqual(burst, [['warn', REFUSED_401, 1]]);
    assert.deepEqual(log.lines.map((l) => [l.level, l.message, l.refused]), [['warn', REFUSED_401, 1], ['warn', REFUSED_401, 1000]]);
  });

  it('forwarder: the same', async () => {
    const time = clock();
    const log = memoryLogger();
    const env = { INBOUND_SECRET: SECRET, ROUTES_FILE: path.join(FIXTURES, 'routes', 'fan-out.json'), ACTIONS_NAMESPACE: 'falco-response' };
    const handler = forwarderHandler(forwarder, { env, log, now: time.now });
    log.lines.splice(0); // the warning that no outbound secret is set
    try {
      for (let i = 0; i < 1000; i++) await call(handler, undefined);
      time.at = 1000;
      await call(handler, 'Bearer guessed');

      assert.deepEqual(log.lines.map((l) => [l.level, l.message, l.refused]), [['warn', REFUSED_401, 1], ['warn', REFUSED_401, 1000]]);
    } finally {
      handler.close();
    }
  });

  it('a broken secret: every call is counted the same way, and the line says again what to fix', async () => {
    const time = clock();
    const log = memoryLogger();
    const handler = podActionHandler(action, { env: { INBOUND_SECRET: ' ' }, kube: countingKube(), log, now: time.now });
    const atStart = log.lines.splice(0).length;

    for (let i = 0; i < 1000; i++) await call(handler, `Bearer ${SECRET}`);
    time.at = 1000;
    await call(handler, undefined);

    const problem =
      "INBOUND_SECRET is set but blank (only spaces or line breaks): an empty secret would let every caller in, so the function refuses every call; put a bearer token (RFC 6750: letters, digits and - . _ ~ + /, optionally ending with '='), such as the output of `openssl rand -hex 32` in the Secret falco-response-shared-secret, or delete the key to run without a secret";
    assert.equal(atStart, 1);
    assert.deepEqual(log.lines.map((l) => [l.level, l.message, l.refused, l.error]), [
      ['error', REFUSED_UNUSABLE, 1, problem],
      ['error', REFUSED_UNUSABLE, 1000, problem],
    ]);
  });
});

describe('the shared secret is checked first, and a broken one fails closed (lib/auth.ts)', function () {
  this.timeout(10000);
  const missingTable = path.join(FIXTURES, 'routes', 'no-such-table.json');

  async function call(handler: (event: unknown, context: unknown) => Promise<Record<string, unknown>>, authorization: string | undefined) {
    const { event, response } = withAuthorization(alert('terminal-shell'), authorization);
    const answer = await handler(event, kubelessContext());
    return { answer, status: response.statusCode };
  }

  describe('an unauthorized caller learns nothing about the configuration', () => {
    it('pod action: a bad parameter (ALLOW_CIDRS=10.0.0.1/8) is answered 401 to it, 500 with the message to an authorized caller', async () => {
      // Given
      const kube = countingKube();
      const handler = podActionHandler(isolate, { env: { INBOUND_SECRET: SECRET, ALLOW_CIDRS: '10.0.0.1/8' }, kube, log: memoryLogger() });

      // When
      const refused = await call(handler, 'Bearer guessed');
      const allowed = await call(handler, `Bearer ${SECRET}`);

      // Then
      assert.deepEqual(refused, { answer: { status: 'unauthorized', error: UNAUTHORIZED }, status: 401 });
      assert.equal(allowed.status, 500);
      assert.match(String(allowed.answer.error), /^invalid configuration: ALLOW_CIDRS: .*"10\.0\.0\.1\/8" has bits set past its prefix length/);
      assert.equal(kube.calls, 0);
    });

    it('forwarder: a routing table it cannot read is answered 401 to it, without the path', async () => {
      const env = { INBOUND_SECRET: SECRET, ROUTES_FILE: missingTable, ACTIONS_NAMESPACE: 'falco-response' };
      const handler = forwarderHandler(forwarder, { env, log: memoryLogger() });
      try {
        const refused = await call(handler, undefined);
        const allowed = await call(handler, `Bearer ${SECRET}`);

        assert.deepEqual(refused, { answer: { status: 'unauthorized', error: UNAUTHORIZED }, status: 401 });
        assert.equal(allowed.status, 500);
        assert.ok(String(allowed.answer.error).includes(missingTable), String(allowed.answer.error));
      } finally {
        handler.close();
      }
    });

    it('forwarder: a bad parameter is answered 401 to it, 500 with the message to an authorized caller', async () => {
      const env = { INBOUND_SECRET: SECRET, ROUTES_FILE: missingTable, CALL_TIMEOUT_SECONDS: 'forever' };
      const handler = forwarderHandler(forwarder, { env, log: memoryLogger() });

      const refused = await call(handler, `Basic ${SECRET}`);
      const allowed = await call(handler, `bearer ${SECRET}`);

      assert.deepEqual(refused, { answer: { status: 'unauthorized', error: UNAUTHORIZED }, status: 401 });
      assert.deepEqual(allowed, {
        answer: { status: 'failed', error: 'invalid configuration: CALL_TIMEOUT_SECONDS: expected a whole number from 1 to 600, got "forever"' },
        status: 500,
      });
    });
  });

  describe('a blank secret never turns the check off', () => {
    const cases: [string, string][] = [
      ['', 'empty'],
      ['   ', 'blank (only spaces or line breaks)'],
      ['\n', 'blank (only spaces or line breaks)'],
      ['\r\n', 'blank (only spaces or line breaks)'],
    ];
    for (const [secret, what] of cases) {
      it(`pod action: INBOUND_SECRET=${JSON.stringify(secret)} answers every call 500, generically, and says why at start`, async () => {
        // Given
        const kube = countingKube();
        const log = memoryLogger();
        const handler = podActionHandler(action, { env: { INBOUND_SECRET: secret }, kube, log });
        const atStart = log.lines.map((l) => [l.level, l.message, l.variable, l.error]);

        // When
        const answers = [await call(handler, undefined), await call(handler, 'Bearer '), await call(handler, `Bearer ${secret}`)];

        // Then
        assert.deepEqual(atStart, [['error', UNUSABLE_SECRET, 'INBOUND_SECRET', blankProblem(what)]]);
        for (const answer of answers) assert.deepEqual(answer, { answer: REFUSED_EVERY_CALL, status: 500 });
        assert.equal(kube.calls, 0);
      });
    }

    it('forwarder: INBOUND_SECRET="" answers every call 500 and invokes nothing', async () => {
      nock.enableNetConnect('127.0.0.1');
      const stub = await startStub(() => ({ status: 200, body: { status: 'done', message: 'ok' } }));
      const log = memoryLogger();
      const env = { INBOUND_SECRET: '', ROUTES_FILE: path.join(FIXTURES, 'routes', 'fan-out.json'), ACTION_ENDPOINTS: JSON.stringify({ 'label-pod': stub.url, 'network-isolate': stub.url, 'delete-pod': stub.url }) };
      const handler = forwarderHandler(forwarder, { env, log });
      try {
        assert.deepEqual(await call(handler, undefined), { answer: REFUSED_EVERY_CALL, status: 500 });
        assert.deepEqual(await call(handler, 'Bearer '), { answer: REFUSED_EVERY_CALL, status: 500 });
        assert.equal(stub.received.length, 0);
        assert.deepEqual(log.lines[0], { ...log.lines[0], level: 'error', message: UNUSABLE_SECRET, variable: 'INBOUND_SECRET', error: blankProblem('empty') });
      } finally {
        handler.close();
        await stub.close();
        nock.disableNetConnect();
      }
    });
  });

  describe('a secret that cannot travel in a header is refused at start', () => {
    it('pod action: INBOUND_SECRET=päss-€ answers every call 500 and the log names the position and kind, never the value', async () => {
      const kube = countingKube();
      const log = memoryLogger();
      const handler = podActionHandler(action, { env: { INBOUND_SECRET: 'päss-€' }, kube, log });

      const answers = [await call(handler, undefined), await call(handler, 'Bearer päss-€')];

      assert.deepEqual(
        log.lines.slice(0, 1).map((l) => [l.level, l.message, l.error]),
        [['error', UNUSABLE_SECRET, badCharacterProblem('INBOUND_SECRET', 2, 'a non-ASCII character')]],
      );
      for (const answer of answers) assert.deepEqual(answer, { answer: REFUSED_EVERY_CALL, status: 500 });
      assert.ok(!JSON.stringify(log.lines).includes('äss'), 'the secret is never logged');
    });

    it('names what is wrong for each kind of bad character', () => {
      const cases: [string, number, string][] = [
        [' leading-space', 1, 'a space'],
        ['tab\there', 4, 'a tab'],
        ['line\nbreak', 5, 'a line break'],
        ['bell\u0007', 5, 'a control character'],
        ['a=b', 2, "an '=' that is not at the end"],
        ['==', 1, "an '=' with nothing before it"],
        ['quote"d', 6, 'an ASCII punctuation character outside the allowed ones'],
      ];
      for (const [secret, position, kind] of cases) {
        const log = memoryLogger();
        podActionHandler(action, { env: { INBOUND_SECRET: secret }, kube: countingKube(), log });
        assert.equal(log.lines[0].error, badCharacterProblem('INBOUND_SECRET', position, kind), JSON.stringify(secret));
      }
      for (const good of ['abc', 'A-Za-z0-9-._~+/', 'dG9rZW4=', 'dG9rZQ==', '0123456789abcdef'.repeat(8)]) {
        const log = memoryLogger();
        podActionHandler(action, { env: { INBOUND_SECRET: good }, kube: countingKube(), log });
        assert.deepEqual(log.lines, [], good);
      }
    });

    it('forwarder: OUTBOUND_SECRET=päss-€ is a configuration error at start: an authorized call answers 500 with it, nothing is sent', async () => {
      nock.enableNetConnect('127.0.0.1');
      const stub = await startStub(() => ({ status: 200, body: { status: 'done', message: 'ok' } }));
      const log = memoryLogger();
      const env = {
        OUTBOUND_SECRET: 'päss-€',
        ROUTES_FILE: path.join(FIXTURES, 'routes', 'fan-out.json'),
        ACTION_ENDPOINTS: JSON.stringify({ 'label-pod': stub.url, 'network-isolate': stub.url, 'delete-pod': stub.url }),
      };
      const handler = forwarderHandler(forwarder, { env, log });
      try {
        const expected = `invalid configuration: ${badCharacterProblem('OUTBOUND_SECRET', 2, 'a non-ASCII character')}`;
        assert.deepEqual(
          log.lines.map((l) => [l.level, l.message, l.error ?? l.variable]),
          [
            ['warn', NO_SECRET, 'INBOUND_SECRET'],
            ['error', CANNOT_START, expected],
          ],
        );
        assert.deepEqual(await call(handler, undefined), { answer: { status: 'failed', error: expected }, status: 500 });
        assert.equal(stub.received.length, 0);
      } finally {
        handler.close();
        await stub.close();
        nock.disableNetConnect();
      }
    });
  });

  it('warns once at start when there is no secret at all (the optional Secret does not exist)', async () => {
    const log = memoryLogger();
    const handler = podActionHandler(action, { env: {}, kube: countingKube(), log });
    const atStart = log.lines.map((l) => ({ ...l, time: undefined }));
    await call(handler, undefined);
    await call(handler, undefined);

    assert.deepEqual(atStart, [{ time: undefined, level: 'warn', message: NO_SECRET, variable: 'INBOUND_SECRET', secret: 'falco-response-shared-secret' }]);
    assert.equal(log.lines.filter((l) => l.level === 'warn').length, 1, 'said once, not per call');
  });

  it('drops the trailing line break of a Secret made from a file, on both sides, and says so at start', async () => {
    // Given: the actions' key and the forwarder's outbound one, both with the newline `echo > file` leaves
    nock.enableNetConnect('127.0.0.1');
    const stub = await startStub(() => ({ status: 200, body: { status: 'done', message: 'ok' } }));
    const log = memoryLogger();
    const env = {
      OUTBOUND_SECRET: `${SECRET}\r\n`,
      INBOUND_SECRET: 'for-the-forwarder\n',
      ROUTES_FILE: path.join(FIXTURES, 'routes', 'fan-out.json'),
      ACTION_ENDPOINTS: JSON.stringify({ 'label-pod': stub.url, 'network-isolate': stub.url, 'delete-pod': stub.url }),
    };
    const handler = forwarderHandler(forwarder, { env, log });
    try {
      // When
      const answer = await call(handler, 'Bearer for-the-forwarder');

      // Then
      assert.equal(answer.status, 200);
      assert.equal(stub.received.length, 3);
      for (const request of stub.received) assert.equal(request.headers.authorization, `Bearer ${SECRET}`);
      const trimmed = 'the shared secret ends with a line break, which is not part of it (callers send it without)';
      assert.deepEqual(
        log.lines.slice(0, 2).map((l) => [l.level, l.message, l.variable]),
        [
          ['warn', trimmed, 'INBOUND_SECRET'],
          ['warn', trimmed, 'OUTBOUND_SECRET'],
        ],
      );
    } finally {
      handler.close();
      await stub.close();
      nock.disableNetConnect();
    }
  });
});
