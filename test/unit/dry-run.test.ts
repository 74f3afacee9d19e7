import { strict as assert } from 'assert';
import { definePodAction, touchedPod } from '../../lib/action';
import { deletePod } from '../../lib/kube/pods';
import { fakeApi, podObject, handlerFor } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';

const POD = '/api/v1/namespaces/default/pods/kubecon';

/** An action that forgets to look at `dryRun`: it deletes whatever the mode. */
const careless = definePodAction({
  name: 'careless',
  description: 'deletes the pod without checking dryRun',
  guardDefaults: { rules: '*' },
  parameters: {},
  permissions: [{ apiGroup: '', resource: 'pods', verbs: ['delete'] }],
  async run({ target, kube, deadline }) {
    await deletePod(kube, target.pod, { gracePeriodSeconds: 1, uid: target.found.metadata?.uid }, deadline);
    return { status: 'done', message: `deleted ${target.pod.name}`, touched: [touchedPod(target.pod, true)] };
  },
});

describe('dry run: the runner refuses every write, even from an action that does not check dryRun (lib/runner.ts)', () => {
  it('answers 500 with a DryRunWriteRefusedError that names the refused write, and no write reaches the API server', async () => {
    // Given: strict nock holds only the read; a DELETE would find no interceptor
    const api = fakeApi().get(POD).reply(200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }));
    const { handler, log } = handlerFor(careless, { DRY_RUN: 'true' });
    const { event, response } = kubelessEvent(alert('terminal-shell'));

    // When
    const answer = await handler(event, kubelessContext());

    // Then
    api.done();
    const error =
      "dry run (DRY_RUN is true): refused to delete the pod 'kubecon' in the namespace 'default'; the action tried to change the cluster, and nothing was changed";
    assert.equal(response.statusCode, 500);
    assert.deepEqual(answer, { status: 'failed', error, target: { namespace: 'default', pod: 'kubecon' } });
    assert.deepEqual(
      log.lines.map((l) => [l.level, l.outcome, l.error]),
      [['error', 'failed', error]],
    );
  });

  it('lets the same action write when dry run is off (the refusal is the mode, not the action)', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }))
      .delete(POD)
      .reply(200, podObject('default', 'kubecon'));
    const { handler } = handlerFor(careless, { DRY_RUN: 'false' });

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.deepEqual([answer.status, answer.message], ['done', 'deleted kubecon']);
  });
});
