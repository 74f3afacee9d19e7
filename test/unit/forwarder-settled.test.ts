import { strict as assert } from 'assert';
import nock from 'nock';
import forwarder from '../../functions/forwarder/router';
import { memoryLogger } from '../../lib/log';
import { forwarderHandler, type ForwarderHandler } from '../../lib/router/runner';
import { onAnotherContainer } from '../helpers/action-cases';
import * as path from 'path';
import { ROOT } from '../../build/main';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { startStub, type HttpStub, type ReceivedRequest, type StubAnswer } from '../helpers/http-stub';

/** An action's done answer; `settles` as lib/runner.ts says it to a caller that asks. */
const doneAnswer = (more: Record<string, unknown> = {}) => ({ status: 'done', action: 'label-pod', target: { namespace: 'default', pod: 'kubecon' }, dryRun: false, message: 'labelled', ...more });
const SETTLES = { settles: { seconds: 10 } };
const DEFAULT_ROUTES_FILE = path.join(ROOT, 'functions', 'forwarder', 'routes.default.json');

interface SettledCase {
  readonly title: string;
  /** What both actions answer each call. */
  readonly answer: (request: ReceivedRequest) => StubAnswer;
  /** The alerts forwarded in turn, each `secondsApart` after the last. */
  readonly alerts: readonly unknown[];
  readonly secondsApart?: number;
  /** Per alert, how many calls each action got (both get the same), and the report of label-pod. */
  readonly calledFor: readonly boolean[];
  readonly settled: readonly (string | undefined)[];
  /** Whether the forwarder asked the actions to say `settles`. */
  readonly asked: boolean;
}

const CASES: readonly SettledCase[] = [
  {
    title: 'an alert alike to one whose answer settles the pod is answered from it, for both actions, without calling them',
    answer: () => ({ status: 200, body: doneAnswer(SETTLES) }),
    alerts: [alert('terminal-shell'), alert('terminal-shell'), alert('terminal-shell')],
    secondsApart: 4,
    calledFor: [true, false, false],
    settled: [undefined, 'event-0', 'event-0'],
    asked: true,
  },
  {
    title: 'for as long as the action said: 10 s after, the actions are called again',
    answer: () => ({ status: 200, body: doneAnswer(SETTLES) }),
    alerts: [alert('terminal-shell'), alert('terminal-shell'), alert('terminal-shell')],
    secondsApart: 10,
    calledFor: [true, true, true],
    settled: [undefined, undefined, undefined],
    asked: true,
  },
  {
    title: 'another container of the pod name (the pod created again) is another target: called',
    answer: () => ({ status: 200, body: doneAnswer(SETTLES) }),
    alerts: [alert('terminal-shell'), onAnotherContainer(alert('terminal-shell'))],
    calledFor: [true, true],
    settled: [undefined, undefined],
    asked: true,
  },
  {
    title: 'another priority is another alert: called',
    answer: () => ({ status: 200, body: doneAnswer(SETTLES) }),
    alerts: [alert('terminal-shell'), { ...alert('terminal-shell'), priority: 'Emergency' }],
    calledFor: [true, true],
    settled: [undefined, undefined],
    asked: true,
  },
  {
    title: 'an answer that does not say it settles the target (capture-evidence, SETTLED_SECONDS 0) is never answered from',
    answer: () => ({ status: 200, body: doneAnswer() }),
    alerts: [alert('terminal-shell'), alert('terminal-shell')],
    calledFor: [true, true],
    settled: [undefined, undefined],
    asked: true,
  },
  ...(
    [
      ['a dry run', doneAnswer({ ...SETTLES, dryRun: true })],
      ['a skip', { status: 'skipped', code: 'pod-gone', reason: 'gone', ...SETTLES }],
      ['seconds past an hour', doneAnswer({ settles: { seconds: 3601 } })],
      ['seconds as text', doneAnswer({ settles: { seconds: '10' } })],
      ['no whole seconds', doneAnswer({ settles: { seconds: 0.5 } })],
    ] as const
  ).map(
    ([what, body]): SettledCase => ({
      title: `an answer that says it settles, but is ${what}, is never answered from`,
      answer: () => ({ status: 200, body }),
      alerts: [alert('terminal-shell'), alert('terminal-shell')],
      calledFor: [true, true],
      settled: [undefined, undefined],
      asked: true,
    }),
  ),
  {
    title: 'a failed call (500) that says it settles is never answered from',
    answer: () => ({ status: 500, body: doneAnswer(SETTLES) }),
    alerts: [alert('terminal-shell'), alert('terminal-shell')],
    calledFor: [true, true],
    settled: [undefined, undefined],
    asked: true,
  },
  {
    title: 'an alert without a container (k8smeta fields only, no container.id) is always forwarded, and nothing is asked',
    answer: () => ({ status: 200, body: doneAnswer(SETTLES) }),
    alerts: [
      { ...alert('terminal-shell'), output_fields: { ...alert('terminal-shell').output_fields, 'container.id': null } },
      { ...alert('terminal-shell'), output_fields: { ...alert('terminal-shell').output_fields, 'container.id': null } },
    ],
    calledFor: [true, true],
    settled: [undefined, undefined],
    asked: false,
  },
];

describe('the forwarder answers alerts alike to one whose answer settled the target from that answer (lib/router/runner.ts)', function () {
  this.timeout(10000);
  let stubs: HttpStub[] = [];
  let handlers: ForwarderHandler[] = [];
  before(() => nock.enableNetConnect('127.0.0.1'));
  after(() => nock.disableNetConnect());
  afterEach(async () => {
    handlers.forEach((h) => h.close());
    await Promise.all(stubs.map((s) => s.close()));
    stubs = [];
    handlers = [];
  });

  for (const c of CASES) {
    it(c.title, async () => {
      // Given: the default table (a terminal shell to label-pod and network-isolate), both answering as the case says
      const received = new Map<string, ReceivedRequest[]>();
      for (const name of ['label-pod', 'network-isolate']) {
        const requests: ReceivedRequest[] = [];
        received.set(name, requests);
        stubs.push(await startStub(c.answer, (r) => requests.push(r)));
      }
      const clock = { now: Date.parse('2026-01-01T12:00:00.000Z') };
      const handler = forwarderHandler(forwarder, {
        env: { ROUTES_FILE: DEFAULT_ROUTES_FILE, ACTION_ENDPOINTS: JSON.stringify({ 'label-pod': stubs[0].url, 'network-isolate': stubs[1].url }) },
        log: memoryLogger(),
        now: () => clock.now,
      });
      handlers.push(handler);

      // When
      const reports: Record<string, unknown>[][] = [];
      const calls: number[] = [];
      for (const [i, a] of c.alerts.entries()) {
        if (i > 0) clock.now += (c.secondsApart ?? 0) * 1000;
        const before = received.get('label-pod')!.length;
        const answer = await handler(kubelessEvent(a, `event-${i}`).event, kubelessContext());
        reports.push(answer.results as Record<string, unknown>[]);
        calls.push(received.get('label-pod')!.length - before);
      }

      // Then
      assert.deepEqual(calls, c.calledFor.map((called) => (called ? 1 : 0)), 'label-pod called');
      assert.deepEqual(received.get('network-isolate')!.length, received.get('label-pod')!.length, 'network-isolate called as often');
      assert.deepEqual(
        reports.map((r) => r.map((report) => (report.settled as { by?: string } | undefined)?.by)),
        c.settled.map((by) => [by, by]),
      );
      for (const [i, r] of reports.entries()) {
        if (c.settled[i] === undefined) continue;
        const at = new Date(Date.parse('2026-01-01T12:00:00.000Z')).toISOString();
        assert.deepEqual(r[0], {
          action: 'label-pod',
          routes: ['terminal-shell'],
          status: 'done',
          ok: true,
          httpStatus: null,
          durationMs: 0,
          message: `not called: label-pod settled the target ${(i * (c.secondsApart ?? 0)).toFixed(1)} s ago for an alike alert, and said alike alerts are answered so for 10 s (its SETTLED_SECONDS)`,
          settled: { at, by: c.settled[i] },
        });
      }
      assert.deepEqual(
        [...received.values()].flat().map((r) => r.headers['falco-response-settles']),
        [...received.values()].flat().map(() => (c.asked ? 'ask' : undefined)),
      );
    });
  }
});
