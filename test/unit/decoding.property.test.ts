import { strict as assert } from 'assert';
import * as fc from 'fast-check';
import { isLeft, isRight } from 'fp-ts/Either';
import { FalcoAlert } from '../../lib/alert';
import { InvalidInputError } from '../../lib/decode';
import { decodeEvent } from '../../lib/event';
import type { Kube, KubeRequest } from '../../lib/kube/client';
import { KubeApiError } from '../../lib/kube/errors';
import { labelValueFrom } from '../../lib/labels';
import { memoryLogger } from '../../lib/log';
import { isDns1123Label, isDns1123Subdomain, isLabelValue } from '../../lib/names';
import { ConfigurationError, priorityText, readParams, type TextCodec } from '../../lib/params';
import { atLeast, PRIORITIES, PriorityCodec, type Priority } from '../../lib/priority';
import { podActionHandler } from '../helpers/recorded-handler';
import { targetOf } from '../../lib/target';
import { alert, kubelessContext } from '../helpers/fixtures';
import { podActions } from '../helpers/pod-actions';

// Runs are bounded so that the whole file takes a few seconds; a failure prints its seed and shrunk counterexample.
const RUNS = { numRuns: 300 };

/** Characters no message may carry raw: controls, bidi and invisible format characters, lone surrogates. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]/u;
/** Five problems of at most a few hundred characters each, and the count of the rest. */
const MAX_MESSAGE = 2000;

/** Any UTF-16 code unit, lone surrogates included: what a JSON string can carry. */
const codeUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 });
/** Text that is often nearly a Kubernetes name, with the characters that make one invalid. */
const nearlyNames = fc.string({
  unit: fc.constantFrom(...'abkz09-.'.split(''), '/', '%2F', '..', 'A', ' ', '\n', '\u0000', '\u009b', '\u202e', 'ü', '\ud83d\ude00', '\ud800'),
  maxLength: 70,
});
const validNamespaces = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const validPodNames = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?){0,3}$/);
const tricky = fc.constantFrom('', ' ', '<NA>', '..', '.', '-', 'kube-system', 'Kube-System', ' kube-system', 'a'.repeat(254), 'n'.repeat(64), '1e+21');
const names = fc.oneof(validNamespaces, validPodNames, nearlyNames, codeUnits, tricky);
const fieldValues = fc.oneof(names, fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.anything({ maxDepth: 1 }));

const optionalValues = fc.constantFrom(undefined, null);
/** Alerts as Falcosidekick sends them, with random but well-typed values; optional fields absent, null or set. */
const wellTyped = fc.record(
  {
    output: fc.string({ maxLength: 60 }),
    priority: fc.mixedCase(fc.constantFrom(...PRIORITIES, 'info')),
    rule: fc.oneof(fc.constantFrom('Terminal shell in container', 'Test rule', 'Write below etc'), fc.string({ minLength: 1, maxLength: 30 })),
    time: fc.constant('2023-05-25T13:44:05.478445995Z'),
    output_fields: fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record(
          {
            'k8s.ns.name': fc.oneof({ weight: 3, arbitrary: validNamespaces }, { weight: 2, arbitrary: fieldValues }),
            'k8s.pod.name': fc.oneof({ weight: 3, arbitrary: validPodNames }, { weight: 2, arbitrary: fieldValues }),
            'container.id': fc.oneof(fc.constant('host'), fc.constant('ee97d9c4186f'), names),
            'ka.target.resource': fc.oneof(fc.constant('pods'), names),
            'ka.target.namespace': fc.oneof(validNamespaces, fieldValues),
            'ka.target.name': fc.oneof(validPodNames, fieldValues),
            'proc.tty': fc.integer(),
          },
          { requiredKeys: ['k8s.ns.name', 'k8s.pod.name'] },
        ),
      },
      {
        weight: 1,
        // Any keys, huge ones and the prototype's names included, with any values (objects are refused).
        arbitrary: fc.dictionary(fc.oneof(codeUnits, fc.constantFrom('__proto__', 'constructor', 'toString'), fc.string({ minLength: 2500, maxLength: 3000 })), fieldValues, {
          maxKeys: 6,
        }),
      },
    ),
    uuid: fc.oneof(fc.uuid(), codeUnits, optionalValues),
    source: fc.oneof(fc.constantFrom('syscall', 'k8saudit', 'internal'), optionalValues),
    tags: fc.oneof(fc.array(fc.string(), { maxLength: 4 }), optionalValues),
    hostname: fc.oneof(fc.string(), optionalValues),
  },
  { requiredKeys: ['output', 'priority', 'rule', 'time', 'output_fields'] },
).map((fields) => fields as Record<string, unknown>);
const FIELDS = ['output', 'priority', 'rule', 'time', 'output_fields', 'uuid', 'source', 'tags', 'hostname'];
/** A well-typed alert with up to three fields removed or given any value at all, `__proto__` included. */
const corrupted = fc
  .tuple(wellTyped, fc.subarray([...FIELDS, '__proto__', 'constructor'], { minLength: 1, maxLength: 3 }), fc.array(fc.anything({ maxDepth: 2 }), { minLength: 3, maxLength: 3 }))
  .map(([fields, broken, values]) => {
    const copy: Record<string, unknown> = { ...fields };
    broken.forEach((field, i) => {
      if (values[i] === undefined) delete copy[field];
      else Object.defineProperty(copy, field, { value: values[i], enumerable: true, configurable: true, writable: true });
    });
    return copy;
  });
/** Alert-shaped objects: often valid, often broken in a few fields. */
const alertShaped = fc.oneof({ weight: 3, arbitrary: wellTyped }, { weight: 2, arbitrary: corrupted });
/** Every kind of value JavaScript has, the odd ones included. */
const hostileValues = fc.anything({
  maxDepth: 3,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});
const bodies = fc.oneof(
  hostileValues,
  fc.json(),
  codeUnits,
  { weight: 3, arbitrary: alertShaped },
  { weight: 2, arbitrary: alertShaped.map((a) => JSON.stringify(a)) },
);
const events = fc.oneof(
  bodies.map((data) => ({ data, 'event-id': 'e' })),
  hostileValues,
  fc.record({ data: bodies, 'event-id': fc.anything({ maxDepth: 0 }) }),
);

type Decision<T> = { ok: true; value: T } | { ok: false; error: Error };

/** Runs `fn`; a thrown error is a decision too, but only one of the allowed classes, with a message fit to print. */
function decide<T>(fn: () => T, allowed: readonly (new (...args: never[]) => Error)[] = [InvalidInputError]): Decision<T> {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    assert.ok(
      allowed.some((kind) => error instanceof kind),
      `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
    const message = (error as Error).message;
    assert.ok(message.trim().length > 0, 'an empty message');
    assert.ok(message.length <= MAX_MESSAGE, `a message of ${message.length} characters`);
    assert.ok(!UNPRINTABLE.test(message), `a raw unprintable character in ${JSON.stringify(message)}`);
    return { ok: false, error: error as Error };
  }
}

/** Two decisions compare by their JSON: decoding must not depend on anything but its input. */
const same = <T>(a: Decision<T>, b: Decision<T>) =>
  assert.equal(JSON.stringify(a.ok ? a.value : a.error.message), JSON.stringify(b.ok ? b.value : b.error.message));

describe('decoding under property-based tests (fast-check)', () => {
  it('decodeEvent: any event gives an alert or an InvalidInputError with a short printable message, the same each time', () => {
    fc.assert(
      fc.property(events, (event) => {
        const first = decide(() => decodeEvent(event));
        same(first, decide(() => decodeEvent(event)));
        if (first.ok) assert.ok(isRight(FalcoAlert.decode(first.value.alert)), 'decoded into something that is not a FalcoAlert');
      }),
      RUNS,
    );
  });

  it('decodeEvent: a body decodes the same whether Kubeless parsed it or handed it over as text', () => {
    fc.assert(
      fc.property(alertShaped, (shaped) => {
        const json = JSON.parse(JSON.stringify(shaped)) as unknown; // what survives the wire
        const asObject = decide(() => decodeEvent({ data: json }));
        const asText = decide(() => decodeEvent({ data: JSON.stringify(json) }));
        same(asObject, asText);
      }),
      RUNS,
    );
  });

  it('decodeEvent: a __proto__ key put in the body or in output_fields, holding anything, is refused by its path', () => {
    // A marker key stands for __proto__ until the text is made: an object literal cannot hold one as an own key.
    const MARKER = '__proto__marker_9f1c';
    fc.assert(
      fc.property(wellTyped, fc.boolean(), fc.jsonValue({ maxDepth: 2 }), fc.boolean(), (shaped, inFields, lent, asText) => {
        const body = JSON.parse(JSON.stringify(shaped)) as Record<string, any>;
        const where = inFields && typeof body.output_fields === 'object' && body.output_fields !== null ? body.output_fields : body;
        where[MARKER] = lent;
        const text = JSON.stringify(body).replace(`"${MARKER}":`, '"__proto__":');
        const decided = decide(() => decodeEvent({ data: asText ? text : JSON.parse(text) }));
        assert.ok(!decided.ok, 'accepted a body holding __proto__');
        const path = where === body ? '__proto__' : 'output_fields.__proto__';
        const problems = decided.error.message.split('; alert: ');
        assert.ok(problems.some((p) => p.replace(/^alert: /, '').startsWith(`${path}: expected no key named __proto__`)), decided.error.message);
      }),
      RUNS,
    );
  });

  it('targetOf: an accepted pod has valid names taken verbatim; valid names are always accepted; the rest is refused or skipped', () => {
    const alerts = fc.record({
      namespace: fc.oneof(names, fc.integer(), fc.boolean(), fc.constant(null)),
      pod: fc.oneof(names, fc.integer(), fc.double(), fc.boolean(), fc.constant(null)),
      containerId: fc.oneof(fc.constant('host'), fc.constant('ee97d9c4186f'), names),
      audit: fc.boolean(),
      resource: fc.oneof(fc.constant('pods'), names),
    });
    fc.assert(
      fc.property(alerts, ({ namespace, pod, containerId, audit, resource }) => {
        const a = alert('terminal-shell');
        if (audit) {
          a.source = 'k8saudit';
          a.output_fields = { 'ka.target.namespace': namespace, 'ka.target.name': pod, 'ka.target.resource': resource };
        } else {
          Object.assign(a.output_fields, { 'k8s.ns.name': namespace, 'k8s.pod.name': pod, 'container.id': containerId });
        }
        const decoded = decodeEvent({ data: a }).alert;
        const target = decide(() => targetOf(decoded));
        same(target, decide(() => targetOf(decoded)));
        const ns = typeof namespace === 'number' ? String(namespace) : namespace;
        const name = typeof pod === 'number' ? String(pod) : pod;
        const decision = target.ok ? target.value : undefined;
        if (decision?.kind === 'pod') {
          const ref = decision.pod;
          assert.ok(isDns1123Label(ref.namespace) && isDns1123Subdomain(ref.name), JSON.stringify(ref));
          assert.deepEqual([ref.namespace, ref.name], [ns, name], 'the names were changed on the way');
        } else if (decision?.kind === 'none') {
          assert.ok(decision.reason.trim() !== '' && !UNPRINTABLE.test(decision.reason), decision.reason);
        }
        const routable = audit ? resource === 'pods' : containerId !== 'host';
        if (routable && typeof ns === 'string' && typeof name === 'string' && isDns1123Label(ns) && isDns1123Subdomain(name)) {
          assert.ok(target.ok && target.value.kind === 'pod', `valid names refused: ${JSON.stringify([ns, name])}`);
        }
      }),
      RUNS,
    );
  });

  it('names: whatever a validator accepts goes into a URL path as it is (nothing to escape, no / . .. or %)', () => {
    fc.assert(
      fc.property(names, (s) => {
        for (const valid of [isDns1123Label, isDns1123Subdomain, isLabelValue]) {
          if (!valid(s)) continue;
          assert.equal(encodeURIComponent(s), s);
          assert.ok(!['.', '..'].includes(s) && !s.includes('%') && !s.includes('/'), s);
        }
        if (isDns1123Label(s)) assert.ok(isDns1123Subdomain(s), 'a namespace name that is not a subdomain');
      }),
      { numRuns: 2000 },
    );
  });

  it('priorities: any value decodes to one of the eight or fails; any case and blanks read the same; atLeast is a total order', () => {
    fc.assert(
      fc.property(fc.oneof(hostileValues, codeUnits), (u) => {
        const decoded = PriorityCodec.decode(u);
        if (isRight(decoded)) assert.ok((PRIORITIES as readonly string[]).includes(decoded.right));
      }),
      RUNS,
    );
    const spelled = fc
      .tuple(fc.constantFrom(...PRIORITIES, 'info'), fc.constantFrom('', ' ', '\t'), fc.constantFrom('', ' ', '\n'))
      .chain(([p, before, after]) => fc.mixedCase(fc.constant(p)).map((cased) => ({ p, text: `${before}${cased}${after}` })));
    fc.assert(
      fc.property(spelled, ({ p, text }) => {
        const expected = p === 'info' ? 'Informational' : p;
        for (const codec of [PriorityCodec, priorityText]) {
          const decoded = codec.decode(text);
          assert.ok(isRight(decoded) && decoded.right === expected, `${JSON.stringify(text)} did not read as ${expected}`);
        }
      }),
      RUNS,
    );
    const priority = fc.constantFrom<Priority>(...PRIORITIES);
    fc.assert(
      fc.property(priority, priority, priority, (a, b, c) => {
        assert.ok(atLeast(a, b) || atLeast(b, a));
        assert.ok(atLeast(a, a));
        if (atLeast(a, b) && atLeast(b, a)) assert.equal(a, b);
        if (atLeast(a, b) && atLeast(b, c)) assert.ok(atLeast(a, c));
      }),
    );
  });

  for (const action of podActions()) {
    it(`params of ${action.name}: any environment gives values or a ConfigurationError naming a variable; decoding is stable`, () => {
      const specs = Object.values(action.parameters);
      const text = fc.oneof(codeUnits, nearlyNames, fc.constantFrom('', '*', 'true', 'FALSE', '0', '-1', '3601', 'Critical', 'none', 'a,,b'));
      const envs = fc.dictionary(fc.constantFrom(...specs.map((s) => s.env)), text);
      assert.doesNotThrow(() => readParams(action.parameters, {}), 'the defaults must decode');
      fc.assert(
        fc.property(envs, (env) => {
          const values = decide(() => readParams(action.parameters, env), [ConfigurationError]);
          same(values, decide(() => readParams(action.parameters, env), [ConfigurationError]));
          if (!values.ok) assert.ok(specs.some((s) => values.error.message.includes(`${s.env}: expected `)), values.error.message);
          for (const spec of specs) {
            // What a codec accepts, it writes back as text that reads the same (docs and manifests show that text).
            const raw = env[spec.env] ?? spec.defaultValue;
            const codec = spec.codec as TextCodec<unknown>;
            const decoded = codec.decode(raw);
            if (isLeft(decoded)) continue;
            const again = codec.decode(codec.encode(decoded.right));
            assert.ok(isRight(again), `${spec.env}: ${JSON.stringify(raw)} reads, but its encoding does not`);
            assert.deepEqual(again.right, decoded.right);
          }
        }),
        RUNS,
      );
    });

    it(`${action.name} through the runner: a Kubernetes call only ever names validated objects, and nothing escapes`, async () => {
      const paths: string[] = [];
      const kube: Kube = {
        request<T>(request: KubeRequest): Promise<T> {
          paths.push(request.path);
          return Promise.reject(new KubeApiError(request.op, 404, 'NotFound', 'not found'));
        },
      };
      const handler = podActionHandler(action, { env: { RULES: '*' }, kube, log: memoryLogger(), ownNamespace: 'falco-response' });
      let reached = 0;
      await fc.assert(
        fc.asyncProperty(fc.oneof(events, alertShaped.map((data) => ({ data }))), async (event) => {
          paths.length = 0;
          // The pod is never found (404): every answer is a refusal or a skip, whatever the input.
          const answer = await handler(event, kubelessContext());
          assert.ok(['invalid', 'skipped'].includes(String(answer.status)), JSON.stringify(answer));
          for (const path of paths) {
            const match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path);
            assert.ok(match !== null && isDns1123Label(match[1]) && isDns1123Subdomain(match[2]), path);
          }
          if (paths.length > 0) reached++;
        }),
        RUNS,
      );
      assert.ok(reached > 0, 'no input reached Kubernetes: the property tested nothing there');
    });
  }

  it('labelValueFrom: any text gives a valid label value or a clear refusal, the same each time; valid values stay as they are', () => {
    fc.assert(
      fc.property(fc.oneof(codeUnits, nearlyNames, fc.string({ maxLength: 100 }), fc.string({ unit: 'binary', maxLength: 80 })), (text) => {
        const first = labelValueFrom(text);
        assert.deepEqual(labelValueFrom(text), first);
        if (first.ok) {
          assert.ok(first.value !== '' && isLabelValue(first.value), JSON.stringify(first));
          if (isLabelValue(text) && text !== '') assert.deepEqual(first, { ok: true, value: text, changed: false });
          if (first.changed) assert.match(first.value, /-[0-9a-f]{8}$/);
        } else {
          assert.ok(first.reason.trim() !== '' && !UNPRINTABLE.test(first.reason), first.reason);
          assert.ok(!/[A-Za-z0-9]/.test(text), `refused text that holds a letter or digit: ${JSON.stringify(text)}`);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
