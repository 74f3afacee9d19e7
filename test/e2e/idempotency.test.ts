/**
 * Falcosidekick fires and forgets, and Falco repeats an alert as long as the shell runs: the same alert arriving
 * again, even ten at once, must not act twice on the real server.
 */
import { strict as assert } from 'assert';
import { functionExists, QUARANTINE_POLICY, ACTION_CASES } from './helpers/cases';
import { api, createPod, readPod, recordedEvents, uniqueName } from './helpers/cluster';
import { terminalShellAlert } from './helpers/sidekick';
import { actionSuite } from './helpers/suite';

const caseOf = (name: string) => ACTION_CASES.find((c) => c.name === name)!;

describe('e2e: the same alert again changes nothing more on the real server', function () {
  const suite = actionSuite('idempotency');

  /** The action in its own runtime, as its own ServiceAccount, with the parameters of its e2e case. */
  // SETTLED_SECONDS 0: every alert reads the server again, as it does once the settled memory has expired; what this
  // file proves is that the server is then not acted on twice (the memory itself: test/unit/settled.test.ts).
  const serve = (name: string) => suite.serve(name, { ...caseOf(name).env, SETTLED_SECONDS: '0' });

  it('delete-pod: the same alert ten times gives one deletion and nine "already gone" answers', async function () {
    // Given
    const pod = uniqueName('ten');
    await createPod(suite.cluster, suite.namespace, pod);
    const fn = await serve('delete-pod');
    const alert = terminalShellAlert(suite.namespace, pod);

    // When: one after the other, as Falco repeats an alert while the shell runs
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await fn.post(alert));

    // Then
    const texts = answers.map((a) => a.text).join('\n');
    assert.deepEqual(answers.map((a) => a.status), Array<number>(10).fill(200), texts);
    assert.equal(answers[0].body.status, 'done', texts);
    for (const answer of answers.slice(1)) {
      assert.equal(answer.body.status, 'skipped', texts);
      assert.equal(answer.body.code, 'pod-gone');
      assert.equal(answer.body.reason, `the pod '${pod}' in the namespace '${suite.namespace}' is already gone`);
    }
    assert.equal(await readPod(suite.cluster, suite.namespace, pod), undefined);
    assert.equal((await recordedEvents(suite.cluster, suite.namespace, pod, 'FalcoResponseDeleted')).length, 1);
  });

  it('delete-pod: a bound pod left terminating (no kubelet here) is deleted once for ten alerts; one given a longer grace period is cut short', async function () {
    // Given: two pods bound to a node, so deletion is graceful and they stay terminating; one already being deleted
    // by someone else with a grace period of an hour
    const [burst, slow] = [uniqueName('terminating'), uniqueName('slow-grace')];
    await Promise.all([burst, slow].map((pod) => createPod(suite.cluster, suite.namespace, pod, { app: 'e2e' }, { nodeName: 'e2e-node' })));
    await api(suite.cluster, { method: 'DELETE', path: `/api/v1/namespaces/${suite.namespace}/pods/${slow}`, body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 3600 } });
    const fn = await serve('delete-pod');

    // When
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await fn.post(terminalShellAlert(suite.namespace, burst)));
    const cutShort = await fn.post(terminalShellAlert(suite.namespace, slow));

    // Then: one deletion, nine answers that it is under way, one Event; the hour-long grace period cut to ours
    const texts = answers.map((a) => a.text).join('\n');
    assert.equal(answers[0].body.status, 'done', texts);
    const terminating = await readPod(suite.cluster, suite.namespace, burst);
    assert.ok(terminating?.metadata.deletionTimestamp !== undefined, 'the pod is not terminating');
    assert.equal(terminating.metadata.deletionGracePeriodSeconds, 1);
    for (const answer of answers.slice(1)) {
      assert.deepEqual([answer.status, answer.body.status, answer.body.code], [200, 'skipped', 'pod-gone'], texts);
      assert.equal(
        answer.body.reason,
        `the pod '${burst}' in the namespace '${suite.namespace}' is already being deleted (since ${terminating.metadata.deletionTimestamp}, grace period 1 s): deleting it again would not hasten it`,
      );
    }
    assert.equal((await recordedEvents(suite.cluster, suite.namespace, burst, 'FalcoResponseDeleted')).length, 1);
    assert.equal(cutShort.body.status, 'done', cutShort.text);
    assert.equal((await readPod(suite.cluster, suite.namespace, slow))?.metadata.deletionGracePeriodSeconds, 1);
  });

  it('delete-pod: ten copies of one alert at once all succeed and delete the pod, each answering done or "already gone/deleted/being deleted"', async function () {
    // Given
    const pod = uniqueName('ten-at-once');
    await createPod(suite.cluster, suite.namespace, pod);
    const fn = await serve('delete-pod');
    const alert = terminalShellAlert(suite.namespace, pod);

    // When
    const answers = await Promise.all(Array.from({ length: 10 }, () => fn.post(alert)));

    // Then: no failure and no second pod touched. How many say "done" is the API server's call: a DELETE that races
    // another one past the read may still answer 200 (the registry ignores the NotFound of the final removal), so
    // the count of "done" is at least one, not exactly one.
    const texts = answers.map((a) => a.text).join('\n');
    assert.deepEqual(answers.map((a) => a.status), Array<number>(10).fill(200), texts);
    const done = answers.filter((a) => a.body.status === 'done');
    assert.ok(done.length >= 1, texts);
    for (const answer of answers.filter((a) => a.body.status !== 'done')) {
      assert.equal(answer.body.status, 'skipped', texts);
      assert.equal(answer.body.code, 'pod-gone');
      // "being deleted": a read that came between the API server marking the pod deleted and removing it (an unbound
      // pod is removed at once, with a grace period of 0 s)
      assert.match(
        answer.body.reason,
        new RegExp(`^the pod '${pod}' in the namespace '${suite.namespace}' is already (gone|deleted|being deleted \\(since [-0-9T:]+Z, grace period 0 s\\): deleting it again would not hasten it)$`),
      );
    }
    assert.equal(await readPod(suite.cluster, suite.namespace, pod), undefined);
    // one Event per deletion: an answer shared with the call in flight (coalesced) or a repeat has none of its own
    const own = done.filter((a) => a.body.coalesced !== true && a.body.repeated !== true).length;
    assert.equal((await recordedEvents(suite.cluster, suite.namespace, pod, 'FalcoResponseDeleted', own)).length, own);
  });

  if (functionExists('network-isolate')) {
    it('network-isolate: isolating twice leaves the NetworkPolicy and the pod as the first time (same resourceVersion)', async function () {
      // Given: a pod isolated once
      const [pod, neighbour] = [uniqueName('twice'), uniqueName('neighbour')];
      await createPod(suite.cluster, suite.namespace, pod);
      await createPod(suite.cluster, suite.namespace, neighbour);
      const fn = await serve('network-isolate');
      const first = await fn.post(terminalShellAlert(suite.namespace, pod));
      assert.equal(first.body.status, 'done', first.text);
      const policyPath = `/apis/networking.k8s.io/v1/namespaces/${suite.namespace}/networkpolicies/${QUARANTINE_POLICY}`;
      const policyBefore = (await api(suite.cluster, { method: 'GET', path: policyPath })).body;
      const podBefore = await readPod(suite.cluster, suite.namespace, pod);

      // When: the same alert again, then an alert about another pod of the namespace
      const again = await fn.post(terminalShellAlert(suite.namespace, pod));
      const other = await fn.post(terminalShellAlert(suite.namespace, neighbour));

      // Then: nothing written the second time; the policy, already as configured, is left alone for the neighbour too
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.status, 'done');
      assert.equal(again.body.details.changed, false, again.text);
      assert.match(again.body.message, new RegExp(`^the pod '${pod}' in the namespace '${suite.namespace}' is already isolated: `));
      assert.equal(other.body.status, 'done', other.text);
      assert.equal(other.body.details.policyStep, 'unchanged', other.text);
      const policyAfter = (await api(suite.cluster, { method: 'GET', path: policyPath })).body;
      assert.equal(policyAfter.metadata.resourceVersion, policyBefore.metadata.resourceVersion);
      assert.equal((await readPod(suite.cluster, suite.namespace, pod)).metadata.resourceVersion, podBefore.metadata.resourceVersion);
      assert.equal((await recordedEvents(suite.cluster, suite.namespace, pod, 'FalcoResponseIsolated')).length, 1);
    });
  }

  if (functionExists('network-isolate')) {
    it('network-isolate: a NetworkPolicy someone changed by hand is brought back to its configuration by the next alert', async function () {
      // Given: a pod isolated once, then the policy opened up by hand (allow all ingress)
      const [pod, next] = [uniqueName('drift'), uniqueName('drift-next')];
      await createPod(suite.cluster, suite.namespace, pod);
      await createPod(suite.cluster, suite.namespace, next);
      const fn = await serve('network-isolate');
      assert.equal((await fn.post(terminalShellAlert(suite.namespace, pod))).body.status, 'done');
      const policyPath = `/apis/networking.k8s.io/v1/namespaces/${suite.namespace}/networkpolicies/${QUARANTINE_POLICY}`;
      const configured = (await api(suite.cluster, { method: 'GET', path: policyPath })).body;
      const opened = await api(suite.cluster, {
        method: 'PATCH',
        path: policyPath,
        contentType: 'application/merge-patch+json',
        body: { metadata: { labels: { 'kept-by': 'operator' } }, spec: { ingress: [{}] } },
      });
      assert.equal(opened.status, 200, JSON.stringify(opened.body));

      // When: the next alert in that namespace
      const answer = await fn.post(terminalShellAlert(suite.namespace, next));

      // Then: the spec is the configured one again, through an update that kept the object's other metadata
      assert.equal(answer.body.status, 'done', answer.text);
      assert.equal(answer.body.details.policyStep, 'restored', answer.text);
      const restored = (await api(suite.cluster, { method: 'GET', path: policyPath })).body;
      assert.deepEqual(restored.spec, configured.spec);
      assert.equal(restored.metadata.labels['kept-by'], 'operator');
      assert.equal((await readPod(suite.cluster, suite.namespace, next)).metadata.labels['falco-response.io/quarantine'], 'true');
    });
  }

  if (functionExists('label-pod')) {
    it('label-pod: labelling twice writes nothing the second time (same resourceVersion)', async function () {
      const pod = uniqueName('label-twice');
      await createPod(suite.cluster, suite.namespace, pod);
      const fn = await serve('label-pod');
      const first = await fn.post(terminalShellAlert(suite.namespace, pod));
      assert.equal(first.body.status, 'done', first.text);
      const before = await readPod(suite.cluster, suite.namespace, pod);

      const again = await fn.post(terminalShellAlert(suite.namespace, pod));

      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.status, 'done');
      assert.equal(again.body.details.changed, false, again.text);
      assert.equal((await readPod(suite.cluster, suite.namespace, pod)).metadata.resourceVersion, before.metadata.resourceVersion);
      assert.equal((await recordedEvents(suite.cluster, suite.namespace, pod, 'FalcoResponseLabeled')).length, 1);
    });
  }
});
