import { strict as assert } from 'assert';
import { existsSync, readdirSync } from 'fs';
import * as path from 'path';
import nock from 'nock';
import type { Kube, KubeRequest } from '../../lib/kube/client';
import { apiPath } from '../../lib/kube/refs';
import { memoryLogger } from '../../lib/log';
import { serveApi, testKube } from '../helpers/fake-cluster';
import { AUTHORIZED, kubelessContext, kubelessEvent, TEST_SECRET } from '../helpers/fixtures';
import { corpusEnv, dataOf, expectedAnswer, expectedOf, HOSTILE, hostileCorpus } from '../helpers/hostile';
import { auditObjectActions, handlerOfAction, nodeActions, podActions } from '../helpers/pod-actions';

/**
 * Records any request that reaches the fake API server. Optional and persisted: it asserts nothing by itself and
 * leaves the strict "every expectation met" hook alone; the tests assert it saw nothing (and nock's "no match" list
 * holds any request without the expected headers).
 */
function apiTripwire(): string[] {
  const seen: string[] = [];
  serveApi((method, uri) => {
    seen.push(`${method} ${uri}`);
    return [599, 'the corpus must never reach the API server'];
  });
  return seen;
}

/** The real client behind a counter: a call counts even if it never reaches the network. */
function countingKube(): { kube: Kube; calls: KubeRequest[] } {
  const inner = testKube();
  const calls: KubeRequest[] = [];
  return {
    calls,
    kube: {
      request<T>(request: KubeRequest, deadline: number): Promise<T> {
        calls.push(request);
        return inner.request<T>(request, deadline);
      },
    },
  };
}

const corpus = hostileCorpus();
// Every action: pod actions and node actions find their target through the alert's pod (lib/targets/pod.ts podOf),
// audit-object actions through the audit event's object; the kind of target says the answer expected.
const actions = [...podActions(), ...nodeActions(), ...auditObjectActions()];

describe('hostile and broken input (test/fixtures/hostile): a 400 or a skip, and no Kubernetes call', () => {
  const unmatched: string[] = [];
  const unhandled: unknown[] = [];
  const onNoMatch = (request: { method?: string; path?: string }) => unmatched.push(`${request.method} ${request.path}`);
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  let calls = 0;

  before(() => {
    nock.emitter.on('no match', onNoMatch);
    process.on('unhandledRejection', onUnhandled);
  });
  after(() => {
    nock.emitter.removeListener('no match', onNoMatch);
    process.removeListener('unhandledRejection', onUnhandled);
  });

  it('holds at least 60 inputs, and lists every file of the folder exactly once', () => {
    const listed = corpus.filter((i) => !i.name.startsWith('generated:')).map((i) => i.name);
    const files = readdirSync(HOSTILE).filter((f) => f !== 'index.json' && f !== 'README.md');
    assert.ok(corpus.length >= 60, `only ${corpus.length} inputs`);
    assert.deepEqual([...listed].sort(), [...files].sort());
    assert.equal(new Set(corpus.map((i) => i.name)).size, corpus.length, 'input names repeat');
  });

  it('has a tripwire that would see a Kubernetes call (so that seeing none means something)', async () => {
    const tripwire = apiTripwire();
    const { kube, calls: kubeCalls } = countingKube();
    const op = { verb: 'get', resource: 'pods', group: '', object: "the pod 'kubecon' in the namespace 'default'" };
    await assert.rejects(kube.request({ method: 'GET', path: apiPath`/api/v1/namespaces/default/pods/kubecon`, op }, Date.now() + 1000), /answered 599/);
    assert.equal(kubeCalls.length, 1);
    assert.deepEqual(tripwire, ['GET /api/v1/namespaces/default/pods/kubecon']);
  });

  it('finds the pod, node and audit-object actions of functions/', () => {
    assert.ok(actions.some((a) => a.name === 'delete-pod'));
    assert.ok(actions.some((a) => a.name === 'cordon-node'));
    assert.ok(actions.some((a) => a.name === 'delete-object' && a.target.kind === 'audit-object'));
    for (const action of actions) assert.ok(existsSync(path.join(__dirname, '..', '..', 'functions', action.name, 'index.ts')));
  });

  for (const action of actions) {
    const { kind } = action.target;
    describe(action.name, () => {
      for (const input of corpus) {
        it(`${input.name}: ${input.about}`, async () => {
          // Given
          const tripwire = apiTripwire();
          const { kube, calls: kubeCalls } = countingKube();
          const log = memoryLogger();
          const handler = handlerOfAction(action, { env: { ...corpusEnv(input, kind), INBOUND_SECRET: TEST_SECRET }, kube, log, ownNamespace: 'falco-response' });
          const expect = expectedOf(input, kind);
          log.lines.splice(0); // what it says at load: only the call's own line is looked at
          // An authorized caller: the corpus is about what the alert holds (delete-object refuses any call without the secret).
          const { event, response } = kubelessEvent(dataOf(input), undefined, AUTHORIZED);

          // When
          const answer = await handler(event, kubelessContext()).catch((error: unknown) => {
            assert.fail(`the handler threw instead of answering: ${String(error)}`);
          });

          // Then
          calls += kubeCalls.length + tripwire.length;
          assert.deepEqual(kubeCalls.map((c) => `${c.method} ${c.path}`), [], 'Kubernetes calls');
          assert.deepEqual(tripwire, [], 'requests that reached the fake API server');
          assert.deepEqual(answer, expectedAnswer(expect, kind));
          assert.equal(response.statusCode, expect.status);
          assert.equal(log.lines.length, 1);
          assert.equal(log.lines[0].level, 'info');
          assert.equal(log.lines[0].outcome, expect.status === 400 ? 'invalid' : 'skipped');
        });
      }
    });
  }

  describe('after the whole corpus', () => {
    it('made no Kubernetes call and sent nothing anywhere', () => {
      assert.equal(calls, 0);
      assert.deepEqual(unmatched, []);
    });

    it('let no promise reject unhandled', () => {
      assert.deepEqual(unhandled, []);
    });

    it('left Object.prototype as it was (__proto__ and constructor keys polluted nothing)', () => {
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.ok(!Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'));
    });
  });
});
