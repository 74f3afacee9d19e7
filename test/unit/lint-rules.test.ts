/**
 * The rules of the house that ESLint enforces (eslint.config.mjs), tested on probe text so that a change to the
 * config that lets a forbidden import through fails here, not in review.
 */
import { strict as assert } from 'assert';
import * as path from 'path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const ROOT = path.join(__dirname, '..', '..');

/** The messages of one rule for `code` as if it were the file `file`; type-aware rules are off, the file does not exist. */
async function lint(file: string, code: string, rule: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: ROOT, overrideConfig: [{ files: ['**/*.ts'], ...tseslint.configs.disableTypeChecked }] });
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return result.messages.filter((m) => m.ruleId === rule).map((m) => `${m.line}: ${m.message}`);
}

describe('lint rules (eslint.config.mjs)', function () {
  this.timeout(60_000);

  it('keeps lib/kube from importing the alert domain, type imports included', async () => {
    // Given
    const code = [
      "import { ConfigurationError } from '../params';",
      "import type { PodRef } from '../target';",
      "import type { FalcoAlert } from '../alert';",
      "import { alertGuard } from '../guards';",
      "import { definePodAction } from '../action';",
      "import { podActionHandler } from '../runner';",
      "import { ROUTES_ENV } from '../router/config';",
      "import { TEST_EVENT } from '../entry';",
      "import { POD_TARGET } from '../targets/pod';",
      "import { ConfigurationError as Same } from '../errors';",
      "import { isNamespaceName } from '../names';",
      "import type { Kube } from './client';",
      'export type { PodRef, FalcoAlert, Kube };',
      'export { ConfigurationError, Same, alertGuard, definePodAction, podActionHandler, ROUTES_ENV, TEST_EVENT, POD_TARGET, isNamespaceName };',
    ].join('\n');
    const why = 'lib/kube must not import the alert domain: take checked names and refs (lib/names.ts, lib/kube/refs.ts) instead.';

    // When
    const messages = await lint('lib/kube/probe.ts', code, 'no-restricted-imports');

    // Then
    const refused = ['../params', '../target', '../alert', '../guards', '../action', '../runner', '../router/config', '../entry', '../targets/pod'];
    assert.deepEqual(messages, refused.map((specifier, i) => `${i + 1}: '${specifier}' import is restricted from being used by a pattern. ${why}`));
  });

  it('lets the rest of lib import the alert domain', async () => {
    // Given / When
    const messages = await lint('lib/audit-probe.ts', "import type { PodRef } from './target';\nexport type { PodRef };", 'no-restricted-imports');

    // Then
    assert.deepEqual(messages, []);
  });
});
