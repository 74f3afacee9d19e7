import { strict as assert } from 'assert';
import { isLeft, isRight } from 'fp-ts/Either';
import * as D from 'io-ts/Decoder';
import { FalcoAlert } from '../../lib/alert';
import { decodeOrThrow, list, literal, nullable, object, record, refined, reportErrors } from '../../lib/decode';
import { decodeEvent } from '../../lib/event';
import { integerText, listText, readParams, param, ConfigurationError } from '../../lib/params';
import { atLeast } from '../../lib/priority';
import { targetOf } from '../../lib/target';
import { alertNamespace } from '../../lib/router/runner';
import { alert, alertText, kubelessEvent } from '../helpers/fixtures';
import { invalid } from '../helpers/invalid';


describe('decoding the Kubeless event and the Falco alert (shared/PROTOCOLS.md sections 1, 3, 4)', () => {
  for (const name of [
    'terminal-shell',
    'terminal-shell-old-sidekick',
    'terminal-shell-null-pod',
    'contact-k8s-api',
    'packet-socket',
    'docker-privileged-container',
    'host-write-below-etc',
    'sidekick-test-event',
  ]) {
    it(`accepts the fixture ${name} as an object and as a string body`, () => {
      const fromObject = decodeEvent(kubelessEvent(alert(name)).event);
      const fromString = decodeEvent(kubelessEvent(alertText(name)).event);
      assert.deepEqual(fromString.alert, fromObject.alert);
      assert.equal(fromObject.eventId, '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f');
    });
  }

  it('reads priorities in any case and `info` as Informational', () => {
    for (const [given, expected] of [['critical', 'Critical'], ['WARNING', 'Warning'], ['info', 'Informational'], [' Notice ', 'Notice']]) {
      const a = alert('terminal-shell');
      a.priority = given;
      assert.equal(decodeEvent(kubelessEvent(a).event).alert.priority, expected);
    }
    assert.ok(atLeast('Critical', 'Warning'));
    assert.ok(atLeast('Warning', 'Warning'));
    assert.ok(!atLeast('Notice', 'Warning'));
  });

  it('keeps numbers, booleans and null in output_fields (evt.time is above 2^53)', () => {
    const decoded = decodeEvent(kubelessEvent(alert('terminal-shell-old-sidekick')).event).alert;
    assert.equal(decoded.output_fields['user.loginuid'], -1);
    assert.equal(decoded.output_fields['proc.pname'], null);
    assert.equal(typeof decoded.output_fields['evt.time'], 'number');
  });

  it('names the path and the value of every problem', () => {
    const a = alert('terminal-shell');
    a.priority = 'loud';
    a.output_fields['k8s.pod.name'] = { nested: true };
    delete a.rule;
    assert.equal(
      invalid(() => decodeEvent(kubelessEvent(a).event)),
      'alert: priority: expected one of Debug, Informational, Notice, Warning, Error, Critical, Alert, Emergency (any case), got "loud"; ' +
        'alert: rule: required, but missing; ' +
        'alert: output_fields["k8s.pod.name"]: expected string | number | boolean | null, got {"nested":true}',
    );
  });

  it('refuses an empty body, a non-JSON string and a list, saying what it got', () => {
    assert.equal(invalid(() => decodeEvent(kubelessEvent({}).event)), 'the request body is empty: expected a Falco alert as JSON');
    assert.equal(invalid(() => decodeEvent(kubelessEvent('  \n').event)), 'the request body is empty: expected a Falco alert as JSON');
    assert.match(invalid(() => decodeEvent(kubelessEvent('rule=x').event)), /^the request body is not JSON \(.*\): got "rule=x"$/);
    assert.equal(invalid(() => decodeEvent(kubelessEvent([1]).event)), 'alert: (the whole value): expected FalcoAlert, got [1]');
  });

  it('cuts long values short in messages: alert text is attacker-written', () => {
    const a = alert('terminal-shell');
    a.rule = 7;
    a.output = 'x'.repeat(5000);
    a.time = 'y'.repeat(200);
    a.time = 12;
    const message = invalid(() => decodeOrThrow(FalcoAlert, a));
    assert.equal(message, 'rule: expected a non-empty string, got 7; time: expected a non-empty string, got 12');
    a.time = '2021-01-01T00:00:00Z';
    a.rule = 'r'.repeat(500);
    a.output_fields = 'z'.repeat(500);
    assert.equal(
      invalid(() => decodeOrThrow(FalcoAlert, a)),
      `output_fields: expected an object of field values, got "${'z'.repeat(79)}… (502 characters)`,
    );
  });
});

describe('the pod an alert names', () => {
  it('reads k8s.ns.name and k8s.pod.name', () => {
    assert.deepEqual(targetOf(decodeEvent(kubelessEvent(alert('packet-socket')).event).alert), {
      kind: 'pod',
      pod: { namespace: 'red-ns', name: 'wordpress-66cd544579-cv29k' },
    });
  });

  it('finds no pod in host events and containers outside Kubernetes', () => {
    for (const name of ['terminal-shell-null-pod', 'docker-privileged-container', 'host-write-below-etc']) {
      assert.equal(targetOf(decodeEvent(kubelessEvent(alert(name)).event).alert).kind, 'none', name);
    }
  });

  it('refuses names that are not Kubernetes names before they reach a URL', () => {
    const a = alert('terminal-shell');
    a.output_fields['k8s.ns.name'] = 'kube-system/../default';
    a.output_fields['k8s.pod.name'] = 'web%2F..';
    assert.equal(
      invalid(() => targetOf(decodeEvent(kubelessEvent(a).event).alert)),
      `alert: output_fields["k8s.ns.name"]: expected a namespace name (lowercase letters, digits and '-', at most 63), got "kube-system/../default"; ` +
        `alert: output_fields["k8s.pod.name"]: expected a pod name (lowercase letters, digits, '-' and '.', at most 253), got "web%2F.."`,
    );
  });

  it('reads audit events about pods from ka.target.*, under the source Falco gives them (k8s_audit) and the plugin name', () => {
    for (const source of ['k8s_audit', 'k8saudit']) {
      const a = { ...alert('terminal-shell'), source, output_fields: { 'ka.target.resource': 'pods', 'ka.target.namespace': 'prod', 'ka.target.name': 'api-0' } };
      assert.deepEqual(targetOf(decodeEvent(kubelessEvent(a).event).alert), { kind: 'pod', pod: { namespace: 'prod', name: 'api-0' } }, source);
    }
  });

  it('reads the name of a created pod from ka.resp.name when ka.target.name is empty', () => {
    const fields = { 'ka.target.resource': 'pods', 'ka.target.namespace': 'prod', 'ka.target.name': null, 'ka.resp.name': 'api-7f9c' };
    const a = { ...alert('terminal-shell'), source: 'k8s_audit', output_fields: fields };
    assert.deepEqual(targetOf(decodeEvent(kubelessEvent(a).event).alert), { kind: 'pod', pod: { namespace: 'prod', name: 'api-7f9c' } });
  });

  it('reads the pod from the k8smeta plugin when Falco sends only k8smeta.pod.name and k8smeta.ns.name', () => {
    // Given: the container plugin's fields unknown (JSON null, as Falco 0.41+ writes them), the k8smeta plugin's set
    const a = alert('terminal-shell');
    a.output_fields['k8s.ns.name'] = null;
    a.output_fields['k8s.pod.name'] = null;
    a.output_fields['k8smeta.ns.name'] = 'prod';
    a.output_fields['k8smeta.pod.name'] = 'web-0';
    // Then
    assert.deepEqual(targetOf(decodeEvent(kubelessEvent(a).event).alert), { kind: 'pod', pod: { namespace: 'prod', name: 'web-0' } });
    assert.equal(alertNamespace(decodeEvent(kubelessEvent(a).event).alert), 'prod');
  });

  it('refuses an alert whose k8s.* and k8smeta.* fields name different pods, rather than pick one', () => {
    const a = alert('terminal-shell');
    a.output_fields['k8smeta.pod.name'] = 'other';
    assert.equal(
      invalid(() => targetOf(decodeEvent(kubelessEvent(a).event).alert)),
      'alert: output_fields["k8smeta.pod.name"]: expected the same pod name as output_fields["k8s.pod.name"] ("kubecon"), got "other"',
    );
  });

  it('validates a name from k8smeta.* as it validates one from k8s.*, naming the field', () => {
    const a = alert('terminal-shell-null-pod');
    a.output_fields['k8smeta.ns.name'] = 'a/../b';
    a.output_fields['k8smeta.pod.name'] = 'web-0';
    assert.equal(
      invalid(() => targetOf(decodeEvent(kubelessEvent(a).event).alert)),
      `alert: output_fields["k8smeta.ns.name"]: expected a namespace name (lowercase letters, digits and '-', at most 63), got "a/../b"`,
    );
  });
});

describe('parameters from the environment', () => {
  const specs = {
    grace: param('GRACE', integerText(0, 60), '5', 'seconds'),
    kinds: param('KINDS', listText('kinds', (k) => /^[A-Z]/.test(k)), '', 'kinds'),
  };

  it('falls back to the defaults and decodes given values', () => {
    assert.deepEqual(readParams(specs, {}), { grace: 5, kinds: [] });
    assert.deepEqual(readParams(specs, { GRACE: '30', KINDS: 'DaemonSet, Job' }), { grace: 30, kinds: ['DaemonSet', 'Job'] });
  });

  it('reads "-0" as 0, the number its text is shown as', () => {
    assert.ok(Object.is(readParams(specs, { GRACE: '-0' }).grace, 0));
  });

  it('lists every bad variable with what it takes and what it holds', () => {
    assert.throws(
      () => readParams(specs, { GRACE: '61', KINDS: 'DaemonSet,job' }),
      (error: unknown) =>
        error instanceof ConfigurationError &&
        error.message ===
          'invalid configuration: GRACE: expected a whole number from 0 to 60, got "61"; KINDS: expected a comma-separated list of kinds ("job" is not one), got "DaemonSet,job"',
    );
  });
});

describe('the combinators every decoder is made of (lib/decode.ts)', () => {
  const upper: D.Decoder<unknown, string> = { decode: (u) => (typeof u === 'string' ? D.success(u.toUpperCase()) : D.failure(u, 'text')) };

  it('object: gives back the input itself, every other key kept, when no part of it changed', () => {
    const input = { name: 'web', extra: { deep: true } };
    const decoded = object({ name: D.string }).decode(input);
    assert.ok(isRight(decoded) && decoded.right === input);
  });

  it('object and record: a changed part is copied without assignment, so a `__proto__` key stays an own key and no prototype is set', () => {
    const input = JSON.parse('{"name":"web","__proto__":{"polluted":"yes"},"labels":{"__proto__":"x","app":"web"}}') as unknown;
    const decoded = object({ name: upper, labels: record(upper) }).decode(input);
    assert.ok(isRight(decoded));
    const value = decoded.right as Record<string, unknown> & { labels: Record<string, string> };
    assert.equal(value.name, 'WEB');
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.equal((value as { polluted?: unknown }).polluted, undefined);
    assert.deepEqual(Object.getOwnPropertyDescriptor(value, '__proto__')?.value, { polluted: 'yes' });
    assert.equal(Object.getPrototypeOf(value.labels), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(value.labels, '__proto__')?.value, 'X');
    assert.equal(value.labels.app, 'WEB');
  });

  it('reports every failing path, in the order of the input, with the name given at that place', () => {
    const codec = object(
      { items: list(refined(D.string, (s) => s !== '', 'a non-empty string'), 'a list of names'), kind: literal('A', 'B') },
      { note: nullable('a note', D.string) },
      'a thing',
    );
    assert.deepEqual(reportFailure(codec, 5), ['(the whole value): expected a thing, got 5']);
    assert.deepEqual(reportFailure(codec, { items: ['x', '', 3], note: 7 }), [
      'items[1]: expected a non-empty string, got ""',
      'items[2]: expected a non-empty string, got 3',
      'kind: required, but missing',
      'note: expected a note, got 7',
    ]);
    assert.deepEqual(reportFailure(codec, { items: 'x', kind: 'C' }), ['items: expected a list of names, got "x"', 'kind: expected "A" | "B", got "C"']);
  });

  it('reports a list of 100,000 failing items in one pass, five of them and the count of the rest', () => {
    const lines = reportFailure(list(D.string), Array.from({ length: 100000 }, () => 1));
    assert.deepEqual(lines.slice(0, 2), ['[0]: expected string, got 1', '[1]: expected string, got 1']);
    assert.equal(lines[5], 'and 99995 more problem(s)');
  });
});

function reportFailure(decoder: D.Decoder<unknown, unknown>, input: unknown): string[] {
  const decoded = decoder.decode(input);
  assert.ok(isLeft(decoded), `${JSON.stringify(input)} decoded`);
  return reportErrors(decoded.left);
}
