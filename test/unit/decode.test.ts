import { strict as assert } from 'assert';
import { FalcoAlert } from '../../lib/alert';
import { decodeOrThrow, InvalidInputError } from '../../lib/decode';
import { decodeEvent } from '../../lib/event';
import { integerText, listText, readParams, param, ConfigurationError } from '../../lib/params';
import { atLeast } from '../../lib/priority';
import { targetOf } from '../../lib/target';
import { alert, alertText, kubelessEvent } from '../helpers/fixtures';

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InvalidInputError, `threw ${String(error)}`);
    return error.message;
  }
  assert.fail('no error');
}

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

  it('reads audit events about pods from ka.target.*', () => {
    const a = { ...alert('terminal-shell'), source: 'k8saudit', output_fields: { 'ka.target.resource': 'pods', 'ka.target.namespace': 'prod', 'ka.target.name': 'api-0' } };
    assert.deepEqual(targetOf(decodeEvent(kubelessEvent(a).event).alert), { kind: 'pod', pod: { namespace: 'prod', name: 'api-0' } });
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
