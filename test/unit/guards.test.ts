import { strict as assert } from 'assert';
import action from '../../functions/delete-pod/action';
import { memoryLogger } from '../../lib/log';
import { podActionHandler } from '../helpers/recorded-handler';
import { fakeApi, podObject, testKube, handlerFor } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';

const handlerWith = (env: Record<string, string> = {}) => handlerFor(action, env, { ownNamespace: 'responders' }).handler;

async function answerTo(data: unknown, env: Record<string, string> = {}) {
  const { event, response } = kubelessEvent(data);
  const answer = await handlerWith(env)(event, kubelessContext());
  return { answer, status: response.statusCode };
}

describe('the shared guards (no Kubernetes call before they pass)', () => {
  it("skips Falcosidekick's test event", async () => {
    const { answer, status } = await answerTo(alert('sidekick-test-event'), { RULES: '*' });
    assert.equal(status, 200);
    assert.deepEqual(answer, { status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: nothing to do" });
  });

  it('skips alerts below MINIMUM_PRIORITY, comparing by severity', async () => {
    const { answer } = await answerTo(alert('terminal-shell-old-sidekick'), { MINIMUM_PRIORITY: 'warning' });
    assert.deepEqual(answer, {
      status: 'skipped',
      code: 'priority-below-minimum',
      reason: 'the priority Notice is below the minimum Warning (MINIMUM_PRIORITY)',
    });
  });

  it('skips host events and containers outside Kubernetes', async () => {
    const { answer } = await answerTo(alert('terminal-shell-null-pod'));
    assert.equal(answer.status, 'skipped');
    assert.equal(answer.code, 'no-pod');
    assert.equal(
      answer.reason,
      'the alert names no pod (k8s.ns.name is null, k8s.pod.name is null): a host event or a container outside Kubernetes',
    );
  });

  it('skips protected namespaces and the function’s own namespace', async () => {
    for (const namespace of ['kube-system', 'responders']) {
      const a = alert('terminal-shell');
      a.output_fields['k8s.ns.name'] = namespace;
      const { answer } = await answerTo(a);
      assert.deepEqual(answer, {
        status: 'skipped',
        code: 'protected-namespace',
        reason: `the namespace '${namespace}' is protected (PROTECTED_NAMESPACES): the pod 'kubecon' is left alone`,
        target: { namespace, pod: 'kubecon' },
      });
    }
  });

  it('reads the pod, then skips it when it opted out by label or annotation', async () => {
    for (const where of ['labels', 'annotations'] as const) {
      const api = fakeApi()
        .get('/api/v1/namespaces/default/pods/kubecon')
        .reply(200, podObject('default', 'kubecon', { [where]: { 'falco-response.io/ignore': 'true' } }));
      const { answer } = await answerTo(alert('terminal-shell'));
      api.done();
      assert.deepEqual(answer, {
        status: 'skipped',
        code: 'opted-out',
        reason: "the pod 'kubecon' in the namespace 'default' opted out with falco-response.io/ignore=true",
        target: { namespace: 'default', pod: 'kubecon' },
      });
    }
  });

  it('answers 500 on every call when its configuration is invalid, and says so once at start', async () => {
    const log = memoryLogger();
    const handler = podActionHandler(action, { env: { GRACE_PERIOD_SECONDS: 'soon' }, kube: testKube(), log });
    const expected = 'invalid configuration: GRACE_PERIOD_SECONDS: expected a whole number from 0 to 3600, got "soon"';
    const loud = log.lines.filter((l) => l.level === 'error');
    assert.equal(loud.length, 1);
    assert.equal(loud[0].error, expected);
    for (let i = 0; i < 2; i++) {
      const { event, response } = kubelessEvent(alert('terminal-shell'));
      assert.deepEqual(await handler(event, kubelessContext()), { status: 'failed', error: expected });
      assert.equal(response.statusCode, 500);
    }
  });
});
