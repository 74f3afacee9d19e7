import { strict as assert } from 'assert';
import * as path from 'path';
import forwarder from '../../functions/forwarder/router';
import { fitText } from '../../functions/label-pod/plan';
import { decodeOrThrow, describeValue, InvalidInputError } from '../../lib/decode';
import { FalcoAlert } from '../../lib/alert';
import { alertSummary } from '../../lib/audit';
import { alertNamespace, forwarderHandler } from '../../lib/router/runner';
import { labelValueFrom } from '../../lib/labels';
import { clipped, memoryLogger } from '../../lib/log';
import { isDns1123Label, isDns1123Subdomain, isLabelValue, isQualifiedName } from '../../lib/names';
import { PriorityCodec } from '../../lib/priority';
import { targetOf } from '../../lib/target';
import { printable } from '../../lib/text';
import { alert, FIXTURES, kubelessContext, kubelessEvent } from '../helpers/fixtures';

/*
 * Every regular expression and loop of lib/ and functions/ that reads alert or request text, run on 1 MiB of the
 * shapes that are worst for it: one character repeated, two alternating, and the shape that makes its pattern
 * backtrack (a long run that a late character spoils). The slowest takes about 300 ms (escaping 1 MiB of control
 * characters for a message, on a loaded machine), most a few milliseconds; the bound is 6 s, 20 times the slowest.
 * A quadratic one takes minutes to hours here.
 */

const MiB = 1024 * 1024;
const BOUND_MS = 6000;

const repeat = (unit: string, tail = '') => unit.repeat(Math.ceil((MiB - tail.length) / unit.length)) + tail;

/** 1 MiB texts: all one character, alternating, a run spoilt at the end or in the middle, non-ASCII. */
const SHAPES: Readonly<Record<string, string>> = {
  'all "a"': repeat('a'),
  'all "-"': repeat('-'),
  'all "."': repeat('.'),
  '"a-" alternating': repeat('a-'),
  '"a." alternating': repeat('a.'),
  '"-_" alternating then "a"': repeat('-_', 'a'),
  '"a", a run of "." then "a"': `a${repeat('.', 'a')}`,
  '"a", a run of "-" then "!"': `a${repeat('-', '!')}`,
  'all digits then "!"': repeat('1', '!'),
  'spaces then "x"': repeat(' ', 'x'),
  'all "日"': repeat('日'),
  'emoji (surrogate pairs)': repeat('😀'),
  'control and bidi characters': repeat('\u0007\u202e'),
};

function timed(what: string, work: () => unknown, boundMs = BOUND_MS): void {
  const started = process.hrtime.bigint();
  try {
    work();
  } catch (error) {
    // Refusing the text is an answer too; only the time matters here, and the error must be an expected one.
    if (!(error instanceof InvalidInputError)) throw error;
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(ms < boundMs, `${what} took ${ms.toFixed(0)} ms (bound ${boundMs} ms)`);
}

function alertWith(fields: Record<string, unknown>, overrides: Record<string, unknown> = {}): FalcoAlert {
  const base = alert('terminal-shell');
  return decodeOrThrow(FalcoAlert, { ...base, ...overrides, output_fields: { ...base.output_fields, ...fields } });
}

const subjects: [string, (text: string) => unknown][] = [
  ['labelValueFrom (the label-value sanitizer of label-pod)', (text) => labelValueFrom(text)],
  ['isDns1123Label', (text) => isDns1123Label(text)],
  ['isDns1123Subdomain', (text) => isDns1123Subdomain(text)],
  ['isLabelValue', (text) => isLabelValue(text)],
  ['isQualifiedName', (text) => isQualifiedName(`${text}/${text}`)],
  ['PriorityCodec', (text) => PriorityCodec.decode(text)],
  ['describeValue', (text) => describeValue(text)],
  ['printable', (text) => printable(text)],
  ['clipped', (text) => clipped(text)],
  ['fitText', (text) => fitText(text, 256 * 1024)],
  ['alertSummary (rule and uuid)', (text) => alertSummary(alertWith({}, { rule: text, uuid: text }))],
  ['targetOf (k8s.ns.name and k8s.pod.name)', (text) => targetOf(alertWith({ 'k8s.ns.name': text, 'k8s.pod.name': text }))],
  ['targetOf (an audit event)', (text) => targetOf(alertWith({ 'ka.target.resource': 'pods', 'ka.target.namespace': 'prod', 'ka.target.name': text }, { source: 'k8saudit' }))],
  ['alertNamespace', (text) => alertNamespace(alertWith({ 'k8s.ns.name': text }))],
];

describe('every pattern and loop over alert text takes linear time (1 MiB inputs)', () => {
  for (const [name, run] of subjects) {
    it(name, () => {
      for (const [shape, text] of Object.entries(SHAPES)) timed(`${name} on ${shape}`, () => run(text));
    });
  }

  it('labelValueFrom still makes the value of a long text: cut, trimmed and hashed', () => {
    const result = labelValueFrom(SHAPES['"a", a run of "." then "a"']);
    assert.ok(result.ok);
    assert.match(result.value, /^a-[0-9a-f]{8}$/);
    assert.ok(isLabelValue(result.value));
  });

  it('labelValueFrom on the 60,000-character rule that took 10 s', () => {
    // It takes well under 1 ms now (3 to 10 s before, depending on the load); the bound is 500 times the need.
    timed('labelValueFrom on 60,000 characters', () => labelValueFrom(`a${'.'.repeat(60000)}a`), 500);
  });

  it('the forwarder checks an event-id (a request header) of 1 MiB in bounded time, and refuses it', async () => {
    // Given
    const handler = forwarderHandler(forwarder, {
      env: { ROUTES_FILE: path.join(FIXTURES, 'routes', 'several.json'), ACTIONS_NAMESPACE: 'falco-response' },
      log: memoryLogger(),
    });
    try {
      for (const [shape, id] of Object.entries({ ...SHAPES, 'printable ASCII then a space': repeat('!', ' ') })) {
        const { event } = kubelessEvent(alert('terminal-shell'), id);

        // When
        const started = Date.now();
        const answer = await handler(event, kubelessContext());

        // Then
        const ms = Date.now() - started;
        assert.ok(ms < BOUND_MS, `the event-id check took ${ms} ms on ${shape}`);
        assert.equal(answer.status, 'invalid', shape);
      }
    } finally {
      handler.close();
    }
  });
});
