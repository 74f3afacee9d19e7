import { strict as assert } from 'assert';
import action from '../../functions/label-pod/action';
import { fitText } from '../../functions/label-pod/plan';
import { ConfigurationError, readParams } from '../../lib/params';
import { eventStored, fakeApi, handlerFor, podObject, status } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';

const POD = '/api/v1/namespaces/default/pods/kubecon';
const EVENTS = '/api/v1/namespaces/default/events';
const MERGE_PATCH = 'application/merge-patch+json';
const UUID = '3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11';
const RULE_VALUE = 'Terminal-shell-in-container-e0e5b21b';

const handlerWith = (env: Record<string, string> = {}) => handlerFor(action, env);

/** The annotations label-pod writes for an alert, with the default prefix. */
function annotationsOf(a: Record<string, any>) {
  return {
    'falco.org/rule': a.rule,
    'falco.org/priority': a.priority,
    'falco.org/time': a.time,
    'falco.org/uuid': a.uuid ?? null,
    'falco.org/output': a.output,
  };
}

/** The pod as it is after label-pod handled the terminal-shell alert. */
function labelledPod() {
  const annotations: Record<string, string> = { ...annotationsOf(alert('terminal-shell')) };
  return podObject('default', 'kubecon', {
    ownerKind: 'ReplicaSet',
    labels: { app: 'web', 'falco.org/flagged': 'true', 'falco.org/rule': RULE_VALUE, 'falco.org/priority': 'Critical' },
    annotations,
  });
}

function eventBody(message: string) {
  return (body: any) => {
    assert.equal(body.reason, 'FalcoResponseLabeled');
    assert.deepEqual(body.involvedObject, { apiVersion: 'v1', kind: 'Pod', name: 'kubecon', namespace: 'default', uid: 'uid-kubecon' });
    assert.equal(body.source.component, 'falco-response/label-pod');
    assert.equal(body.message, message);
    return true;
  };
}

describe('label-pod', () => {
  it('labels and annotates the pod with one merge patch, touching no other label, and records an Event', async () => {
    // Given
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }))
      .patch(POD, {
        metadata: {
          uid: 'uid-kubecon',
          labels: { 'falco.org/flagged': 'true', 'falco.org/rule': RULE_VALUE, 'falco.org/priority': 'Critical' },
          annotations: annotationsOf(alert('terminal-shell')),
        },
      })
      .matchHeader('content-type', MERGE_PATCH)
      .reply(200, labelledPod())
      .post(
        EVENTS,
        eventBody(
          `label-pod labelled the pod (falco.org/flagged=true, falco.org/rule=${RULE_VALUE}, falco.org/priority=Critical) after ` +
            `the Falco rule "Terminal shell in container" (priority Critical, alert uuid ${UUID})`,
        ),
      )
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();
    const { event, response } = kubelessEvent(alert('terminal-shell'));

    // When
    const answer = await handler(event, kubelessContext());

    // Then
    api.done();
    assert.equal(response.statusCode, 200);
    assert.deepEqual(answer, {
      status: 'done',
      action: 'label-pod',
      target: { namespace: 'default', pod: 'kubecon' },
      dryRun: false,
      message: `labelled the pod 'kubecon' in the namespace 'default' (falco.org/flagged=true, falco.org/rule=${RULE_VALUE}, falco.org/priority=Critical)`,
      details: {
        labels: { 'falco.org/flagged': 'true', 'falco.org/rule': RULE_VALUE, 'falco.org/priority': 'Critical' },
        removed: [],
        notes: [],
        touched: [{ kind: 'Pod', namespace: 'default', name: 'kubecon', changed: true }],
        changed: true,
        eventRecorded: 'queued',
      },
    });
  });

  it('writes nothing when the pod already carries the labels: the same alert delivered ten times patches once', async () => {
    // Given: the first delivery finds the pod unlabelled, the nine others find it labelled
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }))
      .patch(POD)
      .reply(200, labelledPod())
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body))
      .get(POD)
      .times(9)
      .reply(200, labelledPod());
    const { handler } = handlerWith();

    // When
    const answers = [];
    // Ten alerts, each with its own event-id as Falcosidekick sends them (one event-id twice is a repeat: lib/repeats.ts).
    for (let i = 0; i < 10; i++) answers.push(await handler(kubelessEvent(alert('terminal-shell'), `event-${i}`).event, kubelessContext()));

    // Then
    api.done();
    assert.equal(answers[0].message, `labelled the pod 'kubecon' in the namespace 'default' (falco.org/flagged=true, falco.org/rule=${RULE_VALUE}, falco.org/priority=Critical)`);
    for (const answer of answers.slice(1)) {
      assert.equal(answer.status, 'done');
      assert.equal(
        answer.message,
        `the pod 'kubecon' in the namespace 'default' is already labelled (falco.org/flagged=true, falco.org/rule=${RULE_VALUE}, falco.org/priority=Critical): nothing to change`,
      );
      assert.equal((answer.details as any).changed, false);
    }
  });

  it('writes nothing for another alert of the same rule on a labelled pod: the annotations keep naming the first alert', async () => {
    const api = fakeApi().get(POD).reply(200, labelledPod());
    const { handler } = handlerWith();
    const later = { ...alert('terminal-shell'), uuid: '0e7c2a6b-5d4f-4c3b-8a19-7f6e5d4c3b2a', time: '2023-05-25T14:00:00.000000000Z', output: 'another shell' };

    const answer = await handler(kubelessEvent(later).event, kubelessContext());

    api.done();
    assert.equal((answer.details as any).changed, false);
  });

  it('relabels when an alert of another rule comes, with that alert in the annotations', async () => {
    const other = { ...alert('terminal-shell'), rule: 'Contact K8S API Server From Container', priority: 'Notice' };
    const api = fakeApi()
      .get(POD)
      .reply(200, labelledPod())
      .patch(POD, {
        metadata: {
          uid: 'uid-kubecon',
          labels: { 'falco.org/flagged': 'true', 'falco.org/rule': 'Contact-K8S-API-Server-From-Container-d90e4c30', 'falco.org/priority': 'Notice' },
          annotations: annotationsOf(other),
        },
      })
      .matchHeader('content-type', MERGE_PATCH)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(other).event, kubelessContext());

    api.done();
    assert.equal((answer.details as any).changed, true);
  });

  describe('label values from hostile rule names', () => {
    const cases: [string, string, string | undefined][] = [
      ['spaces', 'Write below etc', 'Write-below-etc-44d1fc65'],
      ['unicode', 'Écrire sous /etc ✓ 日本', 'crire-sous-etc-364413ed'],
      ['200 characters', 'A'.repeat(200), `${'A'.repeat(54)}-70d3bf8b`],
      ['a path', '../../etc/passwd', 'etc-passwd-3754d6cb'],
      ['nothing left after sanitizing', '../', undefined],
      ['nothing but non-ASCII', '日本語', undefined],
    ];
    for (const [what, rule, value] of cases) {
      it(`${what}: ${value === undefined ? 'leaves the rule label out and says so' : `sets falco.org/rule=${value}`}`, async () => {
        // Given
        const hostile = { ...alert('terminal-shell'), rule };
        const labels: Record<string, string> = { 'falco.org/flagged': 'true', ...(value === undefined ? {} : { 'falco.org/rule': value }), 'falco.org/priority': 'Critical' };
        const api = fakeApi()
          .get(POD)
          .reply(200, podObject('default', 'kubecon'))
          .patch(POD, { metadata: { uid: 'uid-kubecon', labels, annotations: annotationsOf(hostile) } })
          .matchHeader('content-type', MERGE_PATCH)
          .reply(200, podObject('default', 'kubecon'))
          .post(EVENTS)
          .reply(201, (_uri, body) => eventStored(body));
        const { handler } = handlerWith();

        // When
        const answer = await handler(kubelessEvent(hostile).event, kubelessContext());

        // Then
        api.done();
        const described = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ');
        const note =
          value === undefined
            ? `; the label falco.org/rule was left out: the alert's rule ${JSON.stringify(rule)} holds no ASCII letter or digit to make a label value from`
            : '';
        assert.equal(answer.message, `labelled the pod 'kubecon' in the namespace 'default' (${described})${note}`);
      });
    }
  });

  it('removes a label only when configured with key-, and sets nothing it was not configured with', async () => {
    // Given
    const env = { LABELS: 'falco.org/flagged=true,falco.org/cleared-' };
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { labels: { app: 'web', 'falco.org/cleared': 'true' } }))
      .patch(POD, {
        metadata: { uid: 'uid-kubecon', labels: { 'falco.org/flagged': 'true', 'falco.org/cleared': null }, annotations: annotationsOf(alert('terminal-shell')) },
      })
      .matchHeader('content-type', MERGE_PATCH)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body))
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { labels: { app: 'web', 'falco.org/flagged': 'true' }, annotations: annotationsOf(alert('terminal-shell')) }));
    const { handler } = handlerWith(env);

    // When: the first alert removes the label, the second finds nothing to do
    const first = await handler(kubelessEvent(alert('terminal-shell'), 'first-alert').event, kubelessContext());
    const second = await handler(kubelessEvent(alert('terminal-shell'), 'second-alert').event, kubelessContext());

    // Then
    api.done();
    assert.equal(first.message, "labelled the pod 'kubecon' in the namespace 'default' (falco.org/flagged=true, falco.org/cleared-)");
    assert.equal(second.message, "the pod 'kubecon' in the namespace 'default' is already labelled (falco.org/flagged=true, falco.org/cleared-): nothing to change");
  });

  it('cuts a long output text in its annotation and says so', async () => {
    // Given
    const loud = { ...alert('terminal-shell'), output: 'x'.repeat(10000) };
    const cut = `${'x'.repeat(4096 - Buffer.byteLength('… (cut from 10000 bytes)'))}… (cut from 10000 bytes)`;
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .patch(POD, (body: any) => {
        assert.equal(body.metadata.annotations['falco.org/output'], cut);
        assert.equal(Buffer.byteLength(cut), 4096);
        return true;
      })
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();

    // When
    const answer = await handler(kubelessEvent(loud).event, kubelessContext());

    // Then
    api.done();
    assert.match(String(answer.message), /; the annotation falco\.org\/output was cut to 4096 bytes \(the alert's output has 10000\)$/);
  });

  it("leaves the output annotation out when the pod's annotations leave no room within 256 KiB", async () => {
    const full = podObject('default', 'kubecon', { annotations: { big: 'y'.repeat(262144 - 'big'.length - 200) } });
    const api = fakeApi()
      .get(POD)
      .reply(200, full)
      .patch(POD, (body: any) => {
        assert.equal(body.metadata.annotations['falco.org/output'], null);
        assert.equal(body.metadata.annotations['falco.org/rule'], 'Terminal shell in container');
        return true;
      })
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.match(String(answer.message), /; the annotation falco\.org\/output was left out: the pod's annotations leave too little room for it$/);
  });

  it('writes no annotation when ANNOTATION_PREFIX is empty', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .patch(POD, { metadata: { uid: 'uid-kubecon', labels: { 'falco.org/flagged': 'true' } } })
      .matchHeader('content-type', MERGE_PATCH)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith({ ANNOTATION_PREFIX: '', LABELS: 'falco.org/flagged=true' });

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.status, 'done');
  });

  it('in dry-run mode reads the pod and reports the labels it would set, writing nothing', async () => {
    const api = fakeApi().get(POD).reply(200, podObject('default', 'kubecon'));
    const { handler } = handlerWith({ DRY_RUN: 'true' });

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.dryRun, true);
    assert.equal(answer.message, `would label the pod 'kubecon' in the namespace 'default' (falco.org/flagged=true, falco.org/rule=${RULE_VALUE}, falco.org/priority=Critical)`);
  });

  it('answers "pod gone" when the pod is deleted between the read and the patch', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .patch(POD)
      .reply(404, status(404, 'NotFound', 'pods "kubecon" not found'));
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.deepEqual(answer, {
      status: 'skipped',
      code: 'pod-gone',
      reason: "the pod 'kubecon' in the namespace 'default' was deleted before it could be labelled",
      target: { namespace: 'default', pod: 'kubecon' },
    });
  });

  it('leaves a new pod that took the name alone: the uid in the patch is refused (422, as a v1.20 API server answers)', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .patch(POD, (body: any) => body.metadata.uid === 'uid-kubecon')
      .reply(422, status(422, 'Invalid', 'Pod "kubecon" is invalid: metadata.uid: Invalid value: "uid-kubecon": field is immutable'));
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.status, 'skipped');
    assert.equal(
      answer.reason,
      "the pod 'kubecon' in the namespace 'default' was replaced by a new pod of the same name since it was inspected (uid uid-kubecon): the new pod is left alone",
    );
  });

  it('still reports the labelling when the audit Event cannot be recorded', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .patch(POD)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(403, status(403, 'Forbidden', 'events is forbidden'));
    const { handler, log } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.status, 'done');
    assert.equal((answer.details as any).eventRecorded, 'queued');
    assert.deepEqual(
      log.lines.map((l) => [l.level, l.message]),
      [
        ['info', 'alert handled'],
        ['warn', 'the pod was labelled but the audit event could not be recorded'],
      ],
    );
  });

  describe('configuration, checked when the build runs and when the function starts', () => {
    const problem = (env: Record<string, string>) => {
      try {
        readParams(action.parameters, env);
      } catch (error) {
        assert.ok(error instanceof ConfigurationError);
        return error.message;
      }
      assert.fail('the configuration was accepted');
    };
    const expected = 'a comma-separated list of key=value, key={rule}, key={priority} or key- (remove the label) items';

    it('takes the defaults', () => {
      assert.deepEqual(readParams(action.parameters, {}).labels, [
        { kind: 'static', key: 'falco.org/flagged', value: 'true' },
        { kind: 'derived', key: 'falco.org/rule', from: 'rule' },
        { kind: 'derived', key: 'falco.org/priority', from: 'priority' },
      ]);
    });

    it('names every bad item of LABELS', () => {
      assert.equal(
        problem({ LABELS: 'falco.org/flagged=yes please,bad key=x,x={uuid},falco.org/flagged=true,app' }),
        `invalid configuration: LABELS: expected ${expected} (the value "yes please" of "falco.org/flagged" is not a label value ` +
          "(at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit); the key \"bad key\" is not a label key: " +
          "an optional DNS subdomain prefix and '/', then 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit; " +
          '"{uuid}" is not a placeholder (there are {rule} and {priority}); "app" has no \'=\' and does not end with \'-\'), ' +
          'got "falco.org/flagged=yes please,bad key=x,x={uuid},falco.org/flagged=true,app"',
      );
    });

    it('refuses a key that appears twice, and a key controllers select on', () => {
      assert.equal(
        problem({ LABELS: 'a=1,a-,pod-template-hash-' }),
        `invalid configuration: LABELS: expected ${expected} (the key "a" appears twice; the key "pod-template-hash" is not a label key ` +
          'that no controller sets or selects on ("pod-template-hash" is one)), got "a=1,a-,pod-template-hash-"',
      );
    });

    it('refuses an empty LABELS, a bad ANNOTATION_PREFIX and a bad OUTPUT_ANNOTATION_MAX_BYTES', () => {
      assert.equal(
        problem({ LABELS: ' , ', ANNOTATION_PREFIX: 'Falco.org', OUTPUT_ANNOTATION_MAX_BYTES: '1e6' }),
        `invalid configuration: LABELS: expected ${expected}, at least one, got " , "; ` +
          'ANNOTATION_PREFIX: expected a DNS subdomain such as falco.org (lowercase), or nothing for no annotations, got "Falco.org"; ' +
          'OUTPUT_ANNOTATION_MAX_BYTES: expected a whole number from 0 to 65536, got "1e6"',
      );
    });

    it('answers every alert with the configuration problem when the function started with a bad one', async () => {
      const { handler } = handlerWith({ LABELS: 'pod-template-hash=x' });
      const { event, response } = kubelessEvent(alert('terminal-shell'));
      const answer = await handler(event, kubelessContext());
      assert.equal(response.statusCode, 500);
      assert.match(String(answer.error), /^invalid configuration: LABELS: expected .*"pod-template-hash" is one\)\), got "pod-template-hash=x"$/);
    });
  });

  describe('fitText', () => {
    it('cuts on a character boundary, never inside a multi-byte character', () => {
      // 51 bytes: 24 for the notice leave 27, room for 13 two-byte characters and not 13 and a half
      const result = fitText('é'.repeat(100), 51);
      assert.deepEqual(result, { text: `${'é'.repeat(13)}… (cut from 200 bytes)`, cut: true, bytes: 200 });
      assert.equal(Buffer.byteLength(result.text), 50);
    });
  });
});
