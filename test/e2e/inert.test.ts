/**
 * Attacker text on a real API server: what label-pod stores in the pod's annotations and its Event, and what
 * `kubectl describe pod` then prints to a terminal, for an alert whose text holds terminal controls and bidi overrides.
 */
import { strict as assert } from 'assert';
import { createPod, kubectlOk, readPod, recordedEvents, uniqueName } from './helpers/cluster';
import { terminalShellAlert } from './helpers/sidekick';
import { actionSuite } from './helpers/suite';

/** ESC (a screen clear), CR/LF, NUL, U+009B (CSI), U+202E (right-to-left override), U+2066/U+2069, a lone surrogate. */
const HOSTILE = 'x\u001b[2J\r\ny\u0000\u009b31m\u202eexe.txt\u2066z\u2069\ud800 \u00fc';
const ESCAPED = String.raw`x\u001b[2J\u000d\u000ay\u0000\u009b31m\u202eexe.txt\u2066z\u2069\ud800 ` + '\u00fc';
const QUOTED = String.raw`x\u001b[2J\r\ny\u0000\u009b31m\u202eexe.txt\u2066z\u2069\ud800 ` + '\u00fc';
// eslint-disable-next-line no-control-regex -- finding raw control characters is the point
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufffd]/;

describe('e2e: alert text reaches the API server, kubectl describe and the logs escaped (built bundle, Node 14 runtime)', function () {
  const suite = actionSuite('inert');

  it('label-pod stores rule, output, uuid and time escaped, and its Event says the rule escaped', async function () {
    // Given
    const pod = uniqueName('inert');
    await createPod(suite.cluster, suite.namespace, pod);
    const fn = await suite.serve('label-pod', { LABELS: 'falco.org/flagged=true' });
    const alert = JSON.parse(terminalShellAlert(suite.namespace, pod)) as Record<string, unknown>;
    Object.assign(alert, { rule: `Shell ${HOSTILE}`, output: `out ${HOSTILE}`, uuid: `u ${HOSTILE}`, time: `t ${HOSTILE}` });

    // When
    const answer = await fn.post(JSON.stringify(alert));

    // Then: what the API server stores
    assert.equal(answer.status, 200, answer.text);
    const annotations = (await readPod(suite.cluster, suite.namespace, pod)).metadata.annotations as Record<string, string>;
    assert.deepEqual(
      {
        rule: annotations['falco.org/rule'],
        output: annotations['falco.org/output'],
        uuid: annotations['falco.org/uuid'],
        time: annotations['falco.org/time'],
      },
      { rule: `Shell ${ESCAPED}`, output: `out ${ESCAPED}`, uuid: `u ${ESCAPED}`, time: `t ${ESCAPED}` },
    );
    const events = await recordedEvents(suite.cluster, suite.namespace, pod, 'FalcoResponseLabeled');
    assert.equal(events.length, 1, fn.logs);
    assert.equal(
      events[0].message,
      `label-pod labelled the pod (falco.org/flagged=true) after the Falco rule "Shell ${QUOTED}" (priority Critical, alert uuid "u ${QUOTED}")`,
    );

    // Then: what a person reads
    const described = await kubectlOk(suite.cluster, ['describe', 'pod', '-n', suite.namespace, pod]);
    assert.ok(described.includes(`Shell ${ESCAPED}`), described);
    assert.ok(!RAW.test(described), `kubectl describe printed a raw control or bidi character:\n${JSON.stringify(described)}`);
    const jsonLines = fn.logs.split('\n').filter((line) => line.startsWith('{'));
    assert.ok(jsonLines.some((line) => line.includes(`"rule":"Shell ${QUOTED}"`)), fn.logs);
    for (const line of jsonLines) assert.ok(!RAW.test(line), `a raw character in the log line ${JSON.stringify(line)}`);
    await fn.stop();
  });
});
