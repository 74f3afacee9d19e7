/**
 * `npm run new -- <name>`: starts a new handler from a template, `functions/<name>/` (action.ts + index.ts) and its
 * test `test/unit/<name>.test.ts`. The next `npm run build` bundles it and generates its manifests: nothing else to edit.
 */
import { existsSync, mkdirSync, writeFileSync } from 'fs';
import * as path from 'path';
import { isDns1123Label } from '../lib/names';
import { ROOT } from './main';

export class InvalidFunctionNameError extends Error {
  override name = 'InvalidFunctionNameError';
}

/** `delete-pod` → `DeletePod`: the Event reason the template records. */
export function pascalCase(name: string): string {
  return name
    .split('-')
    .filter((part) => part !== '')
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join('');
}

/**
 * Why a name cannot be a new function's, or undefined. The name becomes the Function's, its Service's (a DNS label)
 * and its ServiceAccount's; Kubeless names the code's ConfigMap after the Function, hence no `-config` ending, which
 * a function's configuration ConfigMap `<function>-config` uses.
 */
export function nameProblem(root: string, name: string): string | undefined {
  if (!isDns1123Label(name)) {
    return `${JSON.stringify(name)} is not a function name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (it names the Function, its Service and its ServiceAccount)`;
  }
  if (name.endsWith('-config')) return `${JSON.stringify(name)} ends with '-config', which names the configuration ConfigMap of a function`;
  for (const taken of [path.join('functions', name), path.join('test', 'unit', `${name}.test.ts`)]) {
    if (existsSync(path.join(root, taken))) return `${taken} already exists`;
  }
  return undefined;
}

function actionTemplate(name: string): string {
  return `import { definePodAction } from '../../lib/action';
import { alertSummary } from '../../lib/audit';
import { recordPodEvent } from '../../lib/kube/events';
import { describePod } from '../../lib/kube/pods';

// A starting point from \`npm run new\`: it records a Kubernetes Event on the pod the alert names. Replace the
// description, the parameters, the permissions and run() with what ${name} does; keep run() free of I/O other than kube.
export default definePodAction({
  name: '${name}',
  description: 'Records a Kubernetes Event on the pod named by the alert (template: say in one line what ${name} does).',
  // The rules it answers unless the operator sets RULES; '*' (every rule) must be a deliberate choice.
  guardDefaults: { rules: 'Terminal shell in container' },
  // Its own settings, read from the Function's environment: param('NAME', codec, 'default text', 'what it means').
  parameters: {},
  // Every Kubernetes call run() makes: the generated ClusterRole holds exactly these (and the runner's get on pods).
  permissions: [{ apiGroup: '', resource: 'events', verbs: ['create'] }],
  async run({ alert, target, kube, deadline, dryRun }) {
    const { pod, found } = target;
    if (dryRun) return { status: 'done', message: \`would record an Event on \${describePod(pod)}\`, touched: [] };
    await recordPodEvent(
      kube,
      { ...pod, uid: found.metadata?.uid },
      'FalcoResponse${pascalCase(name)}',
      \`${name} saw \${alertSummary(alert)}\`,
      'falco-response/${name}',
      deadline,
    );
    return { status: 'done', message: \`recorded an Event on \${describePod(pod)}\`, touched: [] };
  },
});
`;
}

function indexTemplate(): string {
  return `// The Kubeless entry point: everything else lives in action.ts and lib/.
import action from './action';
import { podActionHandler } from '../../lib/runner';

export const handler = podActionHandler(action);
`;
}

function testTemplate(name: string): string {
  return `import { strict as assert } from 'assert';
import action from '../../functions/${name}/action';
import { memoryLogger } from '../../lib/log';
import { podActionHandler } from '../../lib/runner';
import { eventStored, fakeApi, podObject, testKube } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';

const POD = '/api/v1/namespaces/default/pods/kubecon';
const EVENTS = '/api/v1/namespaces/default/events';

function handlerWith(env: Record<string, string> = {}) {
  const log = memoryLogger();
  return { handler: podActionHandler(action, { env, kube: testKube(), log, ownNamespace: 'falco-response' }), log };
}

describe('${name}', () => {
  it('records an Event on the pod a terminal-shell alert names', async () => {
    // Given
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS, (body: any) => body.reason === 'FalcoResponse${pascalCase(name)}' && body.involvedObject.uid === 'uid-kubecon')
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
      action: '${name}',
      target: { namespace: 'default', pod: 'kubecon' },
      dryRun: false,
      message: "recorded an Event on the pod 'kubecon' in the namespace 'default'",
      details: { touched: [], changed: false, eventRecorded: false },
    });
  });

  it('changes nothing in dry run', async () => {
    const api = fakeApi().get(POD).reply(200, podObject('default', 'kubecon'));
    const { handler } = handlerWith({ DRY_RUN: 'true' });

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.message, "would record an Event on the pod 'kubecon' in the namespace 'default'");
  });
});
`;
}

/** Writes the template files of a new function; returns their paths relative to `root`. Throws when the name is refused. */
export function createFunction(root: string, name: string): string[] {
  const problem = nameProblem(root, name);
  if (problem !== undefined) throw new InvalidFunctionNameError(problem);
  const files: [string, string][] = [
    [path.join('functions', name, 'action.ts'), actionTemplate(name)],
    [path.join('functions', name, 'index.ts'), indexTemplate()],
    [path.join('test', 'unit', `${name}.test.ts`), testTemplate(name)],
  ];
  for (const [file, text] of files) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text, { flag: 'wx' });
  }
  return files.map(([file]) => file);
}

function main(): void {
  const args = process.argv.slice(2);
  if (args.length !== 1 || args[0].startsWith('-')) {
    process.stderr.write('usage: npm run new -- <name>   (a DNS label such as quarantine-node)\n');
    process.exit(2);
  }
  const name = args[0];
  try {
    const files = createFunction(ROOT, name);
    process.stdout.write(
      [
        `created ${files.join(', ')}`,
        `next: edit functions/${name}/action.ts, then`,
        `  npx mocha --require test/unit/hooks.ts test/unit/${name}.test.ts`,
        '  npm run build            (bundles it and writes its manifests and docs)',
        `  npm run serve -- ${name} --dry-run`,
        `  npm run invoke -- ${name} test/fixtures/alerts/terminal-shell.json`,
        `and route alerts to it: add "${name}" to a route of functions/forwarder/routes.default.json (or the forwarder-config ConfigMap)`,
      ].join('\n') + '\n',
    );
  } catch (error) {
    process.stderr.write(`npm run new: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

if (require.main === module) main();
