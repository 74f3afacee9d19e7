import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import nock from 'nock';
import forwarder from '../../functions/forwarder/router';
import labelPod from '../../functions/label-pod/action';
import { FalcoAlert } from '../../lib/alert';
import { decodeOrThrow } from '../../lib/decode';
import { decodeEvent } from '../../lib/event';
import { forwarderHandler, type ForwarderHandler } from '../../lib/router/runner';
import { parseRoutingTable, planFor, type AlertFacts } from '../../lib/router/routes';
import { memoryLogger } from '../../lib/log';
import { podActionHandler } from '../helpers/recorded-handler';
import { testKube } from '../helpers/fake-cluster';
import { alert, alertText, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { invalid } from '../helpers/invalid';
import { startStub, type HttpStub } from '../helpers/http-stub';


const REFUSED = 'expected no key named __proto__ (copying the object would make its value the prototype)';

/**
 * The body of an exploit as it comes over the wire: a `__proto__` key first, lending what it holds, and an alert
 * with no tags or source of its own. The priority is one the decoder rewrites ("critical" to "Critical"): io-ts then
 * builds a new object by merging its members' results key by key, and `merged["__proto__"] = lent` sets the prototype.
 */
function exploitText(lent: unknown, change: (a: Record<string, any>) => void = () => undefined): string {
  const body = alert('terminal-shell');
  body.priority = 'critical';
  delete body.tags;
  delete body.source;
  change(body);
  return `{"__proto__":${JSON.stringify(lent)},${JSON.stringify(body).slice(1)}`;
}

describe('a __proto__ key in the body is refused at the boundary, wherever it is', () => {
  const exploits: [string, unknown][] = [
    ['tags lent as a text (it matched tags.allOf ["k8s"] by substring)', { tags: 'not-a-k8s-list' }],
    ['tags lent as an object (facts.tags.includes is not a function: a 500)', { tags: { k8s: true } }],
    ['source k8saudit lent (it re-targeted the actions to ka.target.*)', { source: 'k8saudit' }],
  ];
  for (const [what, lent] of exploits) {
    it(`${what}: 400 naming the key, from a body Kubeless parsed and from a text body`, () => {
      // Given
      const text = exploitText(lent);
      const expected = `alert: __proto__: ${REFUSED}, got ${JSON.stringify(lent)}`;

      // When / Then: the runtime's JSON.parse keeps __proto__ as an own key of data; bodyOf parses a text body alike.
      assert.equal(invalid(() => decodeEvent(kubelessEvent(JSON.parse(text)).event)), expected);
      assert.equal(invalid(() => decodeEvent(kubelessEvent(text).event)), expected);
    });
  }

  it('names the path of a __proto__ key in output_fields and in a list, and refuses it whatever it holds', () => {
    const inFields = exploitText({}, (a) => (a.output_fields = { __proto__x: 1, ...a.output_fields })).replace('"__proto__x"', '"__proto__"');
    assert.equal(invalid(() => decodeEvent(kubelessEvent(JSON.parse(inFields)).event)).split('; ')[1], `alert: output_fields.__proto__: ${REFUSED}, got 1`);
    const inList = '{"tags":["shell",{"__proto__":null}]}';
    assert.equal(invalid(() => decodeOrThrow(FalcoAlert, JSON.parse(inList))), `tags[1].__proto__: ${REFUSED}, got null`);
  });

  it('keeps constructor, prototype and hasOwnProperty as ordinary keys: assignment makes them own properties', () => {
    // Given
    const body = alert('terminal-shell');
    body.priority = 'critical';
    Object.assign(body.output_fields, { constructor: 'a', prototype: 'b', hasOwnProperty: 'c' });

    // When
    const decoded = decodeEvent(kubelessEvent(body).event).alert;

    // Then
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    const fields: Record<string, unknown> = decoded.output_fields;
    assert.deepEqual(
      ['constructor', 'prototype', 'hasOwnProperty'].map((key) => [Object.prototype.hasOwnProperty.call(fields, key), fields[key]]),
      [[true, 'a'], [true, 'b'], [true, 'c']],
    );
    assert.deepEqual(decoded.tags, ['container', 'mitre_execution', 'shell']);
  });

  it('walks any depth in one pass: 20,000 nested __proto__ keys, five named and the rest counted', () => {
    // Given: a path to each would cost its depth, so that naming them all would be quadratic.
    const depth = 20000;
    const text = '{"__proto__":0,"a":'.repeat(depth) + '0' + '}'.repeat(depth);
    const data: unknown = JSON.parse(text);

    // When
    const started = process.hrtime.bigint();
    const message = invalid(() => decodeOrThrow(FalcoAlert, data, 'alert'));
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;

    // Then
    assert.equal(
      message,
      [
        `alert: __proto__: ${REFUSED}, got 0`,
        `alert: a.__proto__: ${REFUSED}, got 0`,
        `alert: a.a.__proto__: ${REFUSED}, got 0`,
        `alert: a.a.a.__proto__: ${REFUSED}, got 0`,
        `alert: a.a.a.a.__proto__: ${REFUSED}, got 0`,
        `alert: and ${depth - 5} more problem(s)`,
      ].join('; '),
    );
    // Linear takes about 20 ms here; quadratic would take minutes.
    assert.ok(elapsedMs < 2000, `took ${elapsedMs} ms`);
  });

  it('names a __proto__ key 100,000 levels deep by a path cut short: the message does not grow with the body', () => {
    // Given: extra keys are tolerated, and may nest as deep as the body limit lets them
    const depth = 100_000;
    const data: unknown = JSON.parse('{"k":'.repeat(depth) + '{"__proto__":1}' + '}'.repeat(depth));

    // When
    const message = invalid(() => decodeOrThrow(FalcoAlert, data, 'alert'));

    // Then: the path's first and last 120 characters, and its length (200,009 characters)
    const head = 'k.'.repeat(60);
    const tail = `.${'k.'.repeat(55)}__proto__`;
    assert.equal(message, `alert: ${head}…(a path of ${2 * depth + 9} characters)…${tail}: ${REFUSED}, got 1`);
  });

  it('leaves an alert without such a key as it was: the fixtures decode to what they hold', () => {
    assert.deepEqual(decodeEvent(kubelessEvent(alertText('terminal-shell')).event).alert, JSON.parse(alertText('terminal-shell')));
  });
});

describe('routing reads tags and source only as a list of strings and a string', () => {
  const table = parseRoutingTable(
    JSON.stringify({
      routes: [
        { name: 'k8s-tagged', ruleGlobs: ['*'], tags: { allOf: ['k8s'] }, actions: ['label-pod'] },
        { name: 'any-k8s', ruleGlobs: ['*'], tags: { anyOf: ['k8s'] }, actions: ['label-pod'] },
        { name: 'audit', ruleGlobs: ['*'], sources: ['k8saudit'], actions: ['delete-pod'] },
      ],
    }),
  );
  assert.ok(table.ok);
  const facts = (extra: Record<string, unknown>) => ({ rule: 'r', priority: 'Critical', tags: [], source: undefined, namespace: 'default', ...extra }) as unknown as AlertFacts;

  it('a text is not a list of tags (its includes() matches a substring), nor an object', () => {
    for (const tags of ['not-a-k8s-list', { k8s: true }]) {
      const plan = planFor(table.table, facts({ tags }));
      assert.deepEqual(plan.routes, []);
      assert.deepEqual(plan.misses, [
        'k8s-tagged: the tag(s) "k8s" are missing',
        'any-k8s: none of the tags "k8s" is present',
        'audit: the source null is not one of k8saudit',
      ]);
    }
  });

  it('a source that is not a string is no source', () => {
    assert.deepEqual(planFor(table.table, facts({ source: ['k8saudit'] })).misses[2], 'audit: the source null is not one of k8saudit');
  });

  it('a routing table refuses __proto__ as an unknown field (strictObject reads own keys)', () => {
    const result = parseRoutingTable('{"routes":[{"__proto__":{"mode":"sequential"},"name":"x","ruleGlobs":["*"],"actions":["label-pod"]}]}');
    assert.deepEqual(result, {
      ok: false,
      problems: [
        'routes[0] ("x").__proto__: expected a known field (the fields are name, actions, description, rules, ruleGlobs, ruleRegexes, minimumPriority, tags, sources, namespaces, mode), got {"mode":"sequential"}',
      ],
    });
  });
});

describe('the forwarder answers 400 to the three exploits and invokes nothing', function () {
  this.timeout(10000);
  let dir: string;
  let target: HttpStub;
  let handler: ForwarderHandler;

  before(async () => {
    nock.enableNetConnect('127.0.0.1');
    dir = mkdtempSync(path.join(tmpdir(), 'inert-routes-'));
    const routes = {
      routes: [
        { name: 'k8s-tagged', ruleGlobs: ['*'], tags: { allOf: ['k8s'] }, actions: ['label-pod'] },
        { name: 'audit', ruleGlobs: ['*'], sources: ['k8saudit'], actions: ['delete-pod'] },
      ],
    };
    writeFileSync(path.join(dir, 'routes.json'), JSON.stringify(routes));
    target = await startStub(() => ({ status: 200, body: { status: 'done', action: 'x', message: 'acted' } }));
    handler = forwarderHandler(forwarder, {
      env: { ROUTES_FILE: path.join(dir, 'routes.json'), ACTION_ENDPOINTS: JSON.stringify({ 'label-pod': target.url, 'delete-pod': target.url }) },
      log: memoryLogger(),
    });
  });
  after(async () => {
    handler.close();
    await target.close();
    rmSync(dir, { recursive: true, force: true });
    nock.disableNetConnect();
  });

  for (const lent of [{ tags: 'not-a-k8s-list' }, { tags: { k8s: true } }, { source: 'k8saudit' }]) {
    it(`${JSON.stringify(lent)} lent by __proto__`, async () => {
      // Given
      const { event, response } = kubelessEvent(JSON.parse(exploitText(lent)));

      // When
      const answer = await handler(event, kubelessContext());

      // Then
      assert.deepEqual(answer, { status: 'invalid', error: `alert: __proto__: ${REFUSED}, got ${JSON.stringify(lent)}` });
      assert.equal(response.statusCode, 400);
      assert.equal(target.received.length, 0);
    });
  }
});

describe('a pod action answers 400 to a source lent by __proto__, before any Kubernetes call', () => {
  it('label-pod does not read the pod ka.target.* names', async () => {
    // Given: were source k8saudit read from the prototype, the target would be the pod 'victim'.
    const text = exploitText({ source: 'k8saudit' }, (a) => {
      a.output_fields = { 'ka.target.resource': 'pods', 'ka.target.namespace': 'default', 'ka.target.name': 'victim', 'k8s.ns.name': 'default', 'k8s.pod.name': null };
    });
    const handler = podActionHandler(labelPod, { env: {}, kube: testKube(), log: memoryLogger(), ownNamespace: 'falco-response' });
    const { event, response } = kubelessEvent(JSON.parse(text));

    // When
    const answer = await handler(event, kubelessContext());

    // Then: no interceptor is set, so any request would have failed the call (500), not answered 400.
    assert.deepEqual(answer, { status: 'invalid', error: `alert: __proto__: ${REFUSED}, got {"source":"k8saudit"}` });
    assert.equal(response.statusCode, 400);
  });
});
