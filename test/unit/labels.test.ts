import { strict as assert } from 'assert';
import { createHash } from 'crypto';
import fc from 'fast-check';
import { isRight } from 'fp-ts/Either';
import { labelKeyText, labelValueFrom, shortHash } from '../../lib/labels';
import { isLabelValue } from '../../lib/names';

describe('labelValueFrom: free text to a label value', () => {
  const cases: [string, string, string][] = [
    ['a valid value', 'Critical', 'Critical'],
    ['an already valid rule name', 'Terminal-shell-in-container', 'Terminal-shell-in-container'],
    ['spaces', 'Terminal shell in container', 'Terminal-shell-in-container-e0e5b21b'],
    ['runs of blanks and blanks at the ends', ' Launch   Privileged  Container ', 'Launch-Privileged-Container-e2fb94e7'],
    ['unicode', 'Écrire sous /etc ✓ 日本', 'crire-sous-etc-364413ed'],
    ['an emoji (a surrogate pair)', '😀 emoji rule', 'emoji-rule-9b66c946'],
    ['200 characters', 'A'.repeat(200), `${'A'.repeat(54)}-70d3bf8b`],
    ['64 characters: one too many', 'x'.repeat(64), `${'x'.repeat(54)}-7ce10097`],
    ['dots before a letter', '..a', 'a-f76a4def'],
  ];
  for (const [what, text, expected] of cases) {
    it(`makes ${JSON.stringify(expected)} from ${what}`, () => {
      const result = labelValueFrom(text);
      assert.deepEqual(result, { ok: true, value: expected, changed: expected !== text });
      assert.ok(isLabelValue(expected));
    });
  }

  it('keeps exactly 63 characters as they are', () => {
    assert.deepEqual(labelValueFrom('x'.repeat(63)), { ok: true, value: 'x'.repeat(63), changed: false });
  });

  it('keeps apart two texts that clean up alike', () => {
    assert.deepEqual([labelValueFrom('a b'), labelValueFrom('a/b'), labelValueFrom('a-b')], [
      { ok: true, value: 'a-b-c8687a08', changed: true },
      { ok: true, value: 'a-b-c14cddc0', changed: true },
      { ok: true, value: 'a-b', changed: false },
    ]);
  });

  it('makes no value from text with no ASCII letter or digit, and says why', () => {
    assert.deepEqual(labelValueFrom('../'), { ok: false, reason: '"../" holds no ASCII letter or digit to make a label value from' });
    assert.deepEqual(labelValueFrom('日本語'), { ok: false, reason: '"日本語" holds no ASCII letter or digit to make a label value from' });
    assert.deepEqual(labelValueFrom(''), { ok: false, reason: '"" holds no ASCII letter or digit to make a label value from' });
  });

  it('appends the first 8 hex digits of the SHA-256 of the original (what `printf %s "$RULE" | sha256sum` prints)', () => {
    const rule = 'Terminal shell in container';
    assert.equal(shortHash(rule), createHash('sha256').update(rule).digest('hex').slice(0, 8));
  });

  it('always gives a valid value or a reason, the same for the same text, and distinct values for distinct texts', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 120 }), (a, b) => {
        const first = labelValueFrom(a);
        assert.deepEqual(labelValueFrom(a), first);
        if (first.ok) assert.ok(isLabelValue(first.value) && first.value !== '', JSON.stringify(first.value));
        const second = labelValueFrom(b);
        if (a !== b && first.ok && second.ok) assert.notEqual(first.value, second.value);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('labelKeyText: a label key from configuration', () => {
  it('takes a qualified name', () => {
    const result = labelKeyText.decode(' falco-response.io/quarantine ');
    assert.ok(isRight(result));
    assert.equal(result.right, 'falco-response.io/quarantine');
  });

  it('refuses what is not a label key, and the keys controllers select on', () => {
    for (const key of ['a b', '/x', 'x/', 'Example.com/x', `${'x'.repeat(64)}`, 'pod-template-hash', 'controller-revision-hash']) {
      assert.ok(!isRight(labelKeyText.decode(key)), key);
    }
  });
});
