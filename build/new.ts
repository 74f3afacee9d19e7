/**
 * `npm run new -- <name> [--target pod|node|audit-object]`: starts a new action from a template, `functions/<name>/`
 * (action.ts + index.ts) and its test `test/unit/<name>.test.ts`, acting on the alert's pod, on that pod's node, or on
 * the object a Kubernetes audit alert names. The next `npm run build` bundles it and generates its manifests with
 * exactly its permissions: nothing else to edit.
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

/** What a new action acts on: `npm run new -- <name> --target node`. */
export type TemplateTarget = 'pod' | 'node' | 'audit-object';
export const TEMPLATE_TARGETS: readonly TemplateTarget[] = ['pod', 'node', 'audit-object'];

/** What differs between the templates of each kind of target; the rest is one text. */
interface TargetTemplate {
  /** The imports of the descriptor's maker, and its call. */
  readonly define: string;
  readonly opener: string;
  /** What the action acts on, in its description. */
  readonly what: string;
  /** The lines of the descriptor that only this kind has. */
  readonly extra: string;
  readonly rules: string;
  /** The alert fixture of the generated test, and the cluster it finds. */
  readonly fixture: string;
  readonly cluster: string;
  /** What the cluster line takes from test/helpers/fixtures.ts. */
  readonly fixtureImports: readonly string[];
  readonly eventsPath: string;
  /** The objects the Events are about, in the order they are recorded. */
  readonly involved: string;
  readonly answerTarget: string;
  readonly described: string;
  readonly permissions: string;
}

const TEMPLATES: Readonly<Record<TemplateTarget, TargetTemplate>> = {
  pod: {
    define: `import { definePodAction } from '../../lib/action';`,
    opener: 'definePodAction({',
    what: 'the pod named by the alert',
    extra: '',
    rules: 'Terminal shell in container',
    fixture: 'terminal-shell',
    cluster: `new MemoryCluster().addPod('default', 'kubecon')`,
    fixtureImports: [],
    eventsPath: '/api/v1/namespaces/default/events',
    involved: `[{ apiVersion: 'v1', kind: 'Pod', name: 'kubecon', namespace: 'default', uid: 'uid-kubecon' }]`,
    answerTarget: `{ namespace: 'default', pod: 'kubecon' }`,
    described: "the pod 'kubecon' in the namespace 'default'",
    permissions: `[
        { apiGroup: '', resource: 'events', verbs: ['create'] },
        { apiGroup: '', resource: 'pods', verbs: ['get'] },
      ]`,
  },
  node: {
    define: `import { defineAction } from '../../lib/action';\nimport { NODE_TARGET } from '../../lib/targets/node';`,
    opener: 'defineAction(NODE_TARGET, {',
    what: 'the node of the pod named by the alert',
    extra: '',
    rules: 'Terminal shell in container',
    fixture: 'terminal-shell',
    cluster: `new MemoryCluster().add(scheduledPodObject('default', 'kubecon', 'worker-1')).add(nodeObject('worker-1'))`,
    fixtureImports: ['nodeObject', 'scheduledPodObject'],
    eventsPath: '/api/v1/namespaces/default/events',
    involved: `[
      { apiVersion: 'v1', kind: 'Node', name: 'worker-1', uid: 'uid-worker-1' },
      { apiVersion: 'v1', kind: 'Pod', name: 'kubecon', namespace: 'default', uid: 'uid-kubecon' },
    ]`,
    answerTarget: `{ namespace: 'default', pod: 'kubecon', node: 'worker-1' }`,
    described: "the node 'worker-1'",
    permissions: `[
        { apiGroup: '', resource: 'events', verbs: ['create'] },
        { apiGroup: '', resource: 'nodes', verbs: ['get'] },
        { apiGroup: '', resource: 'pods', verbs: ['get'] },
      ]`,
  },
  'audit-object': {
    define: `import { defineAction } from '../../lib/action';\nimport { AUDIT_OBJECT_TARGET } from '../../lib/targets/audit-object';`,
    opener: 'defineAction(AUDIT_OBJECT_TARGET, {',
    what: 'the object a Kubernetes audit alert names',
    extra: `\n  // The resources (ka.target.resource) it takes: the runner reads the object (get on each) and skips the others.\n  resources: ['serviceaccounts'],`,
    rules: 'K8s Serviceaccount Created',
    fixture: 'k8saudit-serviceaccount-created',
    cluster: `new MemoryCluster().add({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'default', uid: 'uid-default', resourceVersion: '1' } })`,
    fixtureImports: [],
    eventsPath: '/api/v1/namespaces/default/events',
    involved: `[{ apiVersion: 'v1', kind: 'ServiceAccount', name: 'default', namespace: 'default', uid: 'uid-default' }]`,
    answerTarget: `{ resource: 'serviceaccounts', namespace: 'default', name: 'default' }`,
    described: "the ServiceAccount 'default' in the namespace 'default'",
    permissions: `[
        { apiGroup: '', resource: 'events', verbs: ['create'] },
        { apiGroup: '', resource: 'serviceaccounts', verbs: ['get'] },
      ]`,
  },
};

function actionTemplate(name: string, kind: TargetTemplate): string {
  return `${kind.define}
import { recordAudit } from '../../lib/audit';
import { ActionFailedError } from '../../lib/outcome';
import { describeTarget } from '../../lib/resolve';

// A starting point from \`npm run new\`: it records a Kubernetes Event on ${kind.what}.
// Replace the description, the parameters, the permissions, the checks and run() with what ${name} does;
// keep run() free of I/O other than kube.
export default ${kind.opener}
  name: '${name}',
  description: 'Records a Kubernetes Event on ${kind.what} (template: say in one line what ${name} does).',${kind.extra}
  // The rules it answers unless the operator sets RULES; '*' (every rule) must be a deliberate choice.
  guardDefaults: { rules: '${kind.rules}' },
  // Its own settings, read from the Function's environment: param('NAME', codec, 'default text', 'what it means').
  parameters: {},
  // Every Kubernetes call run() makes: the generated ClusterRole holds exactly these (and the runner's own reads).
  permissions: [{ apiGroup: '', resource: 'events', verbs: ['create'] }],
  // Its own skip conditions, after the shared ones: { name, description, check: ({ alert, target, params }) => … }.
  checks: [],
  async run({ alert, target, kube, log, deadline, dryRun }) {
    const what = describeTarget(target);
    if (dryRun) return { status: 'done', message: \`would record an Event on \${what}\`, touched: [] };
    // An action that changes its target returns \`touched\` and an \`audit\` note instead: the runner records the Event.
    const recorded = await recordAudit({ alert, kube, log, deadline }, target, {
      action: '${name}',
      reason: 'FalcoResponse${pascalCase(name)}',
      what: 'saw',
      change: 'seen',
    });
    if (!recorded) throw new ActionFailedError(\`no Event could be recorded on \${what} (the log says why)\`);
    return { status: 'done', message: \`recorded an Event on \${what}\`, touched: [] };
  },
});
`;
}

function indexTemplate(): string {
  return `// The Kubeless entry point: everything else lives in action.ts and lib/.
import action from './action';
import { actionHandler } from '../../lib/runner';

export const handler = actionHandler(action);
`;
}

function testTemplate(name: string, kind: TargetTemplate): string {
  return `import { strict as assert } from 'assert';
import action from '../../functions/${name}/action';
import { memoryLogger } from '../../lib/log';
import { actionHandler } from '../../lib/runner';
import { serveCluster, testKube } from '../helpers/fake-cluster';
import { ${['alert', 'kubelessContext', 'kubelessEvent', ...kind.fixtureImports].join(', ')} } from '../helpers/fixtures';
import { MemoryCluster } from '../helpers/memory-cluster';

function handlerWith(env: Record<string, string> = {}) {
  const log = memoryLogger();
  return { handler: actionHandler(action, { env, kube: testKube(), log, ownNamespace: 'falco-response' }), log };
}

describe('${name}', () => {
  it('declares exactly the permissions it uses', () => {
    assert.deepEqual(action.permissions, ${kind.permissions});
  });

  it("records an Event on ${kind.described} that the alert leads to", async () => {
    // Given
    const cluster = ${kind.cluster};
    const api = serveCluster(cluster);
    const { handler } = handlerWith();
    const { event, response } = kubelessEvent(alert('${kind.fixture}'));

    // When
    const answer = await handler(event, kubelessContext());

    // Then
    api.done();
    assert.equal(response.statusCode, 200);
    assert.deepEqual(answer, {
      status: 'done',
      action: '${name}',
      target: ${kind.answerTarget},
      dryRun: false,
      message: "recorded an Event on ${kind.described}",
      details: { touched: [], changed: false, eventRecorded: false },
    });
    // lib/audit.ts records it where \`kubectl describe\` shows it: a node's on the node and on the pod that led to it.
    const events = cluster.under('${kind.eventsPath}/') as any[];
    assert.deepEqual(
      events.map((e) => e.involvedObject),
      ${kind.involved},
    );
    assert.deepEqual(events.map((e) => e.reason), events.map(() => 'FalcoResponse${pascalCase(name)}'));
  });

  it('changes nothing in dry run', async () => {
    const cluster = ${kind.cluster};
    const api = serveCluster(cluster);
    const { handler } = handlerWith({ DRY_RUN: 'true' });

    const answer = await handler(kubelessEvent(alert('${kind.fixture}')).event, kubelessContext());

    api.done();
    assert.equal(answer.message, "would record an Event on ${kind.described}");
    assert.deepEqual(cluster.under('${kind.eventsPath}/'), []);
  });
});
`;
}

/** Writes the template files of a new function; returns their paths relative to `root`. Throws when the name is refused. */
export function createFunction(root: string, name: string, target: TemplateTarget = 'pod'): string[] {
  const problem = nameProblem(root, name);
  if (problem !== undefined) throw new InvalidFunctionNameError(problem);
  const kind = TEMPLATES[target];
  const files: [string, string][] = [
    [path.join('functions', name, 'action.ts'), actionTemplate(name, kind)],
    [path.join('functions', name, 'index.ts'), indexTemplate()],
    [path.join('test', 'unit', `${name}.test.ts`), testTemplate(name, kind)],
  ];
  for (const [file, text] of files) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text, { flag: 'wx' });
  }
  return files.map(([file]) => file);
}

const USAGE = `usage: npm run new -- <name> [--target ${TEMPLATE_TARGETS.join('|')}]   (name: a DNS label such as quarantine-node; target: what it acts on, pod unless said)\n`;

/** `<name>` or `<name> --target <kind>`, in either order; undefined when the words are off. */
export function parseNewArgs(args: readonly string[]): { name: string; target: TemplateTarget } | undefined {
  let name: string | undefined;
  let target: TemplateTarget = 'pod';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--target') {
      const value = args[++i];
      if (!TEMPLATE_TARGETS.includes(value as TemplateTarget)) return undefined;
      target = value as TemplateTarget;
    } else if (arg.startsWith('-') || name !== undefined) {
      return undefined;
    } else {
      name = arg;
    }
  }
  return name === undefined ? undefined : { name, target };
}

function main(): void {
  const parsed = parseNewArgs(process.argv.slice(2));
  if (parsed === undefined) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  const { name, target } = parsed;
  try {
    const files = createFunction(ROOT, name, target);
    process.stdout.write(
      [
        `created ${files.join(', ')} (an action on ${TEMPLATES[target].what})`,
        `next: edit functions/${name}/action.ts, then`,
        `  npx mocha --require test/unit/hooks.ts test/unit/${name}.test.ts`,
        '  npm run build            (bundles it and writes its manifests and docs)',
        `  npm run serve -- ${name} --dry-run`,
        `  npm run invoke -- ${name} test/fixtures/alerts/${TEMPLATES[target].fixture}.json`,
        `and route alerts to it: add "${name}" to a route of functions/forwarder/routes.default.json (or the forwarder-config ConfigMap)`,
      ].join('\n') + '\n',
    );
  } catch (error) {
    process.stderr.write(`npm run new: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

if (require.main === module) main();
