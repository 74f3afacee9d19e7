import { strict as assert } from 'assert';
import labelPod from '../../functions/label-pod/action';
import { eventMessage } from '../../lib/kube/events';
import { clipped, jsonLogger } from '../../lib/log';
import { podActionHandler } from '../helpers/recorded-handler';
import { eventStored, fakeApi, podObject, testKube } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';

/** The alert text an attacker controls, with every character that could act on a terminal or reorder a line. */
const HOSTILE = 'a\u001b[31mb\r\nc\u0000d\u009b2Je\u202ef\u2066g\u2069h\ud800i \ud83d\ude00 \u00fc';
/** HOSTILE as printable() writes it: each such character an escape, ordinary letters and emoji kept. */
const ESCAPED = String.raw`a\u001b[31mb\u000d\u000ac\u0000d\u009b2Je\u202ef\u2066g\u2069h\ud800i ` + '\ud83d\ude00 \u00fc';
/** HOSTILE in a JSON log line: JSON's own escapes for C0 and lone surrogates, printable()'s for the rest. */
const LOGGED = String.raw`a\u001b[31mb\r\nc\u0000d\u009b2Je\u202ef\u2066g\u2069h\ud800i ` + '\ud83d\ude00 \u00fc';
// eslint-disable-next-line no-control-regex -- finding raw control characters is the point
const RAW_UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('alert text reaches the cluster and the logs inert', () => {
  it('the JSON logger escapes what JSON.stringify leaves raw, in every field, and the line reads back the same', () => {
    // Given
    const lines: string[] = [];
    const log = jsonLogger({ function: 'label-pod' }, (_level, line) => lines.push(line));

    // When
    log.info('alert handled', { eventId: HOSTILE, rule: HOSTILE, nested: { reason: HOSTILE } });

    // Then
    const [line] = lines;
    const time = (JSON.parse(line) as { time: string }).time;
    assert.equal(
      line,
      `{"time":"${time}","level":"info","function":"label-pod","message":"alert handled","eventId":"${LOGGED}","rule":"${LOGGED}","nested":{"reason":"${LOGGED}"}}`,
    );
    assert.ok(!RAW_UNPRINTABLE.test(line), `a raw character in ${line}`);
    assert.deepEqual(JSON.parse(line), { time, level: 'info', function: 'label-pod', message: 'alert handled', eventId: HOSTILE, rule: HOSTILE, nested: { reason: HOSTILE } });
  });

  it('label-pod writes rule, output, uuid and time escaped into the annotations, the Event message and its log line', async () => {
    // Given
    const hostile = { ...alert('terminal-shell'), rule: `Shell ${HOSTILE}`, output: `out ${HOSTILE}`, uuid: `u ${HOSTILE}`, time: `t ${HOSTILE}` };
    let annotations: unknown;
    let message: unknown;
    const api = fakeApi()
      .get('/api/v1/namespaces/default/pods/kubecon')
      .reply(200, podObject('default', 'kubecon'))
      .patch('/api/v1/namespaces/default/pods/kubecon', (body: { metadata: { annotations: unknown } }) => ((annotations = body.metadata.annotations), true))
      .reply(200, podObject('default', 'kubecon'))
      .post('/api/v1/namespaces/default/events', (body: { message: unknown }) => ((message = body.message), true))
      .reply(201, (_uri, body) => eventStored(body));
    const lines: string[] = [];
    const handler = podActionHandler(labelPod, {
      // The rule label comes from another function of plan.ts; the annotations are what is checked here.
      env: { LABELS: 'falco.org/flagged=true' },
      kube: testKube(),
      log: jsonLogger({ function: 'label-pod' }, (_level, line) => lines.push(line)),
      ownNamespace: 'falco-response',
    });

    // When
    const answer = await handler(kubelessEvent(hostile, `id-${HOSTILE}`).event, kubelessContext());

    // Then
    api.done();
    assert.equal(answer.status, 'done');
    assert.deepEqual(annotations, {
      'falco.org/rule': `Shell ${ESCAPED}`,
      'falco.org/priority': 'Critical',
      'falco.org/time': `t ${ESCAPED}`,
      'falco.org/uuid': `u ${ESCAPED}`,
      'falco.org/output': `out ${ESCAPED}`,
    });
    assert.equal(
      message,
      `label-pod labelled the pod (falco.org/flagged=true) after the Falco rule "Shell ${LOGGED}" (priority Critical, alert uuid "u ${LOGGED}")`,
    );
    const handled = lines.filter((l) => l.includes('"alert handled"'));
    assert.equal(handled.length, 1);
    assert.ok(handled[0].includes(`"eventId":"id-${LOGGED}","rule":"Shell ${LOGGED}"`), handled[0]);
    assert.ok(!RAW_UNPRINTABLE.test(handled[0]), `a raw character in ${handled[0]}`);
  });

  it('tag characters, invisible text a reader cannot see but a tool reads, are escaped as their two halves', () => {
    // Given: "rm -rf" written in tag characters (U+E0072 U+E006D …) after a harmless rule
    const hidden = [...'rm -rf'].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
    const lines: string[] = [];
    const log = jsonLogger({}, (_level, line) => lines.push(line));

    // When
    log.info('alert handled', { rule: `Shell\u{e0001}${hidden}` });

    // Then: each an escape a JSON reader reads back as the character
    assert.equal(eventMessage(`x${hidden}`), String.raw`x\udb40\udc72\udb40\udc6d\udb40\udc20\udb40\udc2d\udb40\udc72\udb40\udc66`);
    assert.ok(lines[0].includes(String.raw`"rule":"Shell\udb40\udc01\udb40\udc72\udb40\udc6d`), lines[0]);
    assert.equal((JSON.parse(lines[0]) as { rule: string }).rule, `Shell\u{e0001}${hidden}`);
  });

  it('an Event message is escaped whoever built it, and cut without splitting a surrogate pair', () => {
    assert.equal(eventMessage(`deleted after ${HOSTILE}`), `deleted after ${ESCAPED}`);
    const long = `${'a'.repeat(1003)}\ud83d\ude00${'b'.repeat(100)}`;
    assert.equal(eventMessage(long), `${'a'.repeat(1003)}… (truncated)`);
  });

  it('a logged field is cut short without splitting a surrogate pair, and says how long it was', () => {
    // Given: a rule whose 200th unit, where the log cuts, is the first half of an emoji
    const rule = `${'a'.repeat(199)}\ud83d\ude00${'b'.repeat(100)}`;

    // When
    const field = clipped(rule);

    // Then: no lone half reaches the log line
    assert.equal(field, `${'a'.repeat(199)}… (301 characters)`);
    assert.equal(clipped('short'), 'short');
  });
});
