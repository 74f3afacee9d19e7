/**
 * The room rule of functions/, enforced by the project's own ESLint configuration (eslint.config.mjs): an action's
 * code imports nothing that does I/O. Linted here with the project's config, type checking off so that a source text
 * that is in no file can be linted.
 */
import { strict as assert } from 'assert';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { ROOT } from '../helpers/pod-actions';

const RULE = '@typescript-eslint/no-restricted-imports';
const WHY = 'functions/ holds pure action logic, with no I/O: use the Kube that the runner injects (lib/runner.ts).';

const eslint = new ESLint({ cwd: ROOT, overrideConfig: [{ files: ['**/*.ts'], ...tseslint.configs.disableTypeChecked }] });

/** The messages of the rule for `source` as the file `filePath`. */
async function refusals(source: string, filePath = 'functions/example/action.ts'): Promise<string[]> {
  const [result] = await eslint.lintText(`${source}\nexport {};\n`, { filePath: `${ROOT}/${filePath}` });
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

describe('the room rule of functions/: no I/O (eslint.config.mjs)', function () {
  this.timeout(30000);

  it('refuses an import of http in an action, with the message an author reads', async () => {
    assert.deepEqual(await refusals("import * as http from 'http';"), [`'http' import is restricted from being used. ${WHY}`]);
  });

  for (const module of ['http', 'https', 'fs', 'child_process', 'dgram', 'tls']) {
    it(`refuses '${module}', 'node:${module}' and a require of it`, async () => {
      assert.deepEqual(await refusals(`import * as a from '${module}';\nimport * as b from 'node:${module}';\nimport c = require('${module}');`), [
        `'${module}' import is restricted from being used. ${WHY}`,
        `'node:${module}' import is restricted from being used. ${WHY}`,
        `'${module}' import is restricted from being used. ${WHY}`,
      ]);
    });
  }

  it("refuses net's sockets, keeping only its address checks", async () => {
    const only = "only 'isIP,isIPv4,isIPv6'";
    assert.deepEqual(await refusals("import { connect } from 'net';\nimport * as b from 'node:net';\nimport c = require('net');"), [
      `'connect' import from 'net' is restricted because ${only} import(s) is/are allowed. ${WHY}`,
      `* import is invalid because ${only} from 'node:net' is/are allowed. ${WHY}`,
      `'default' import from 'net' is restricted because ${only} import(s) is/are allowed. ${WHY}`,
    ]);
  });

  it("refuses a module's subpath (fs/promises) and re-exports", async () => {
    assert.deepEqual(await refusals("import { readFile } from 'fs/promises';\nexport { request } from 'node:https';"), [
      `'fs/promises' import is restricted from being used by a pattern. ${WHY}`,
      `'node:https' import is restricted from being used. ${WHY}`,
    ]);
  });

  it('refuses the Kubernetes client and the connection loader, which only the runner builds', async () => {
    const source = "import { KubeClient } from '../../lib/kube/client';\nimport { loadConnection } from '../../lib/kube/connection';";
    assert.deepEqual(await refusals(source), [
      `'../../lib/kube/client' import is restricted from being used by a pattern. ${WHY}`,
      `'../../lib/kube/connection' import is restricted from being used by a pattern. ${WHY}`,
    ]);
  });

  it("lets through what does no I/O: a type from the client, net's address checks, the rest of lib/kube", async () => {
    const source = [
      "import type { Kube } from '../../lib/kube/client';",
      "import type { Server } from 'http';",
      "import { isIPv4, isIPv6 } from 'net';",
      "import { deletePod } from '../../lib/kube/pods';",
    ].join('\n');
    assert.deepEqual(await refusals(source), []);
  });

  it('applies to functions/ only: lib/ and the tools do their I/O', async () => {
    assert.deepEqual(await refusals("import * as http from 'http';\nimport { KubeClient } from './kube/client';", 'lib/example.ts'), []);
  });
});
