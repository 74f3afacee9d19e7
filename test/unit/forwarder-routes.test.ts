import { strict as assert } from 'assert';
import { readFileSync } from 'fs';
import * as path from 'path';
import { decodeOrThrow, InvalidInputError } from '../../lib/decode';
import { FalcoAlert } from '../../lib/alert';
import { alertNamespace } from '../../lib/router/runner';
import { globMatches } from '../../lib/router/patterns';
import { parseRoutingTable, planFor, whyNot, type AlertFacts, type Route, type RoutingTable } from '../../lib/router/routes';
import { alert, FIXTURES } from '../helpers/fixtures';

const FUNCTIONS = ['delete-pod', 'forwarder', 'label-pod', 'network-isolate'];

/** A fresh parsed copy of a routing table fixture: tests may change it freely. */
function tableFixture(name: string): Record<string, any> {
  return JSON.parse(readFileSync(path.join(FIXTURES, 'routes', `${name}.json`), 'utf8'));
}

function problemsOf(table: unknown): readonly string[] {
  const result = parseRoutingTable(typeof table === 'string' ? table : JSON.stringify(table), { self: 'forwarder', functions: FUNCTIONS });
  assert.ok(!result.ok, 'the table was accepted');
  return result.problems;
}

function table(value: unknown): RoutingTable {
  const result = parseRoutingTable(JSON.stringify(value), { self: 'forwarder' });
  assert.ok(result.ok, result.ok ? '' : result.problems.join('\n'));
  return result.table;
}

function route(fields: Record<string, unknown>): Route {
  return table({ routes: [{ name: 'r', ruleGlobs: ['*'], actions: ['label-pod'], ...fields }] }).routes[0];
}

const facts = (overrides: Partial<AlertFacts> = {}): AlertFacts => ({
  rule: 'Terminal shell in container',
  priority: 'Notice',
  tags: ['container', 'mitre_execution', 'shell'],
  source: 'syscall',
  namespace: 'default',
  ...overrides,
});

describe('forwarder: the routing table', () => {
  describe('decoding', () => {
    it('reads every field of the fixture and fills the defaults', () => {
      // Given
      const text = readFileSync(path.join(FIXTURES, 'routes', 'several.json'), 'utf8');

      // When
      const result = parseRoutingTable(text, { self: 'forwarder', functions: FUNCTIONS });

      // Then
      assert.ok(result.ok);
      const [shell, critical, api] = result.table.routes;
      assert.deepEqual(
        { ...shell },
        {
          name: 'shell',
          rules: ['Terminal shell in container'],
          ruleGlobs: [],
          ruleRegexes: [],
          minimumPriority: 'Notice',
          tagsAllOf: [],
          tagsAnyOf: [],
          sources: undefined,
          namespacesInclude: undefined,
          namespacesExclude: [],
          actions: ['label-pod', 'network-isolate'],
          mode: 'sequential',
        },
      );
      assert.equal(critical.minimumPriority, 'Critical');
      assert.deepEqual(critical.ruleGlobs, ['*']);
      assert.deepEqual(critical.namespacesExclude, ['kube-*']);
      assert.equal(critical.mode, 'parallel', 'parallel is the default');
      assert.deepEqual(api.ruleRegexes.map((r) => r.source), ['^Contact K8S API']);
      assert.deepEqual([api.tagsAllOf, api.tagsAnyOf], [['k8s', 'container'], ['mitre_discovery', 'mitre_execution']]);
      assert.deepEqual(api.sources, ['syscall']);
      assert.deepEqual(api.namespacesInclude, ['openfaas-*', 'prod']);
      assert.deepEqual(result.table.actions, ['label-pod', 'network-isolate', 'delete-pod']);
    });

    it("accepts the default table of functions/forwarder/ against today's functions", () => {
      const text = readFileSync(path.join(__dirname, '..', '..', 'functions', 'forwarder', 'routes.default.json'), 'utf8');
      const result = parseRoutingTable(text, { self: 'forwarder', functions: FUNCTIONS });
      assert.deepEqual(result.ok ? [] : result.problems, []);
    });

    it('refuses text that is not JSON, saying so', () => {
      let parseError = '';
      try {
        JSON.parse('routes: []');
      } catch (error) {
        parseError = (error as Error).message;
      }
      assert.deepEqual(problemsOf('routes: []'), [`the routing table is not JSON: ${parseError}`]);
    });

    const cases: [string, (t: Record<string, any>) => unknown, string][] = [
      ['the table is not an object', () => ['shell'], '(the whole value): expected a routing table: an object with a list of routes, got ["shell"]'],
      ['routes is missing', (t) => ({ description: t.description }), 'routes: required, but missing'],
      ['routes is not a list', (t) => ({ ...t, routes: {} }), 'routes: expected a list of routes, got {}'],
      ['the table has an unknown field', (t) => ({ ...t, route: [] }), 'route: expected a known field (the fields are routes, description), got []'],
      ['description is not text', (t) => ({ ...t, description: 3 }), 'description: expected text, got 3'],
      ['a route is not an object', (t) => ((t.routes[1] = 'shell'), t), 'routes[1]: expected a route, got "shell"'],
      ['a route has no name', (t) => (delete t.routes[0].name, t), 'routes[0].name: required, but missing'],
      [
        'a route name is not a DNS label',
        (t) => ((t.routes[0].name = 'Shell Route'), t),
        `routes[0] ("Shell Route").name: expected a route name (lowercase letters, digits and '-', at most 63), got "Shell Route"`,
      ],
      ['two routes share a name', (t) => ((t.routes[2].name = 'shell'), t), 'routes[2] ("shell").name: expected a name no other route has (routes[0] has it), got "shell"'],
      [
        'a route has an unknown field (a misspelt criterion would widen it)',
        (t) => ((t.routes[0].minimumPriorty = 'Notice'), t),
        'routes[0] ("shell").minimumPriorty: expected a known field (the fields are name, actions, description, rules, ruleGlobs, ruleRegexes, ' +
          'minimumPriority, tags, sources, namespaces, mode), got "Notice"',
      ],
      ['description of a route is not text', (t) => ((t.routes[0].description = ['x']), t), 'routes[0] ("shell").description: expected text, got ["x"]'],
      [
        'a route selects no rule',
        (t) => (delete t.routes[0].rules, t),
        'routes[0] ("shell"): expected at least one of rules, ruleGlobs or ruleRegexes (ruleGlobs ["*"] selects every rule), got none',
      ],
      ['rules is not a list', (t) => ((t.routes[0].rules = 'Terminal shell in container'), t), 'routes[0] ("shell").rules: expected a list of Falco rule names, got "Terminal shell in container"'],
      ['a rule name is blank', (t) => ((t.routes[0].rules = [' ']), t), 'routes[0] ("shell").rules[0]: expected a Falco rule name, got " "'],
      [
        'a glob is empty',
        (t) => ((t.routes[1].ruleGlobs = ['']), t),
        `routes[1] ("critical-anywhere").ruleGlobs[0]: expected a glob of 1 to 200 characters ('*' any text, '?' one character), got ""`,
      ],
      [
        'a glob is too long',
        (t) => ((t.routes[1].ruleGlobs = ['*'.repeat(201)]), t),
        `routes[1] ("critical-anywhere").ruleGlobs[0]: expected a glob of 1 to 200 characters ('*' any text, '?' one character), got "${'*'.repeat(79)}… (203 characters)`,
      ],
      [
        'a regular expression does not compile',
        (t) => ((t.routes[2].ruleRegexes = ['^Contact (K8S']), t),
        'routes[2] ("k8s-api").ruleRegexes[0]: expected a regular expression of 1 to 200 characters (Invalid regular expression: /^Contact (K8S/: Unterminated group), got "^Contact (K8S"',
      ],
      [
        'a regular expression holds a backreference (no linear-time matcher has one)',
        (t) => ((t.routes[2].ruleRegexes = ['^(\\w)\\1']), t),
        'routes[2] ("k8s-api").ruleRegexes[0]: expected a regular expression of 1 to 200 characters in the syntax matched in linear time (see the README), ' +
          'without a backreference "\\\\1" at index 5, got "^(\\\\w)\\\\1"',
      ],
      [
        'a regular expression holds a lookahead',
        (t) => ((t.routes[2].ruleRegexes = ['^Contact (?!K8S)']), t),
        'routes[2] ("k8s-api").ruleRegexes[0]: expected a regular expression of 1 to 200 characters in the syntax matched in linear time (see the README), ' +
          'without a lookahead "(?!" at index 9, got "^Contact (?!K8S)"',
      ],
      [
        'a regular expression is too long',
        (t) => ((t.routes[2].ruleRegexes = ['a'.repeat(201)]), t),
        `routes[2] ("k8s-api").ruleRegexes[0]: expected a regular expression of 1 to 200 characters, got "${'a'.repeat(79)}… (203 characters)`,
      ],
      [
        'minimumPriority is not a priority',
        (t) => ((t.routes[0].minimumPriority = 'severe'), t),
        'routes[0] ("shell").minimumPriority: expected one of Debug, Informational, Notice, Warning, Error, Critical, Alert, Emergency (any case), got "severe"',
      ],
      ['tags is not an object', (t) => ((t.routes[2].tags = ['k8s']), t), 'routes[2] ("k8s-api").tags: expected an object with allOf and/or anyOf, got ["k8s"]'],
      ['tags has an unknown field', (t) => ((t.routes[2].tags = { all: ['k8s'] }), t), 'routes[2] ("k8s-api").tags.all: expected a known field (the fields are allOf, anyOf), got ["k8s"]'],
      ['tags.allOf is not a list', (t) => ((t.routes[2].tags.allOf = 'k8s'), t), 'routes[2] ("k8s-api").tags.allOf: expected a list of tags, got "k8s"'],
      ['a tag of anyOf is not text', (t) => ((t.routes[2].tags.anyOf = [1]), t), 'routes[2] ("k8s-api").tags.anyOf[0]: expected a tag, got 1'],
      ['a source is empty', (t) => ((t.routes[2].sources = ['']), t), 'routes[2] ("k8s-api").sources[0]: expected an event source such as syscall or k8s_audit, got ""'],
      [
        'an included namespace is not a namespace name',
        (t) => ((t.routes[2].namespaces.include = ['Prod']), t),
        `routes[2] ("k8s-api").namespaces.include[0]: expected a namespace name or a glob of one (lowercase letters, digits, '-', '*' and '?', at most 63), got "Prod"`,
      ],
      [
        'namespaces.exclude is not a list',
        (t) => ((t.routes[1].namespaces.exclude = 'kube-system'), t),
        'routes[1] ("critical-anywhere").namespaces.exclude: expected a list of namespace names or globs, got "kube-system"',
      ],
      [
        'namespaces has an unknown field',
        (t) => ((t.routes[1].namespaces = { except: ['a'] }), t),
        'routes[1] ("critical-anywhere").namespaces.except: expected a known field (the fields are include, exclude), got ["a"]',
      ],
      ['mode is neither parallel nor sequential', (t) => ((t.routes[0].mode = 'serial'), t), 'routes[0] ("shell").mode: expected "parallel" or "sequential", got "serial"'],
      ['actions is missing', (t) => (delete t.routes[0].actions, t), 'routes[0] ("shell").actions: required, but missing'],
      ['actions is not a list', (t) => ((t.routes[0].actions = 'label-pod'), t), 'routes[0] ("shell").actions: expected a list of action names, got "label-pod"'],
      ['actions is empty', (t) => ((t.routes[0].actions = []), t), 'routes[0] ("shell").actions: expected at least one action name, got []'],
      [
        'an action name is not a function name',
        (t) => ((t.routes[0].actions[1] = 'Network_Isolate'), t),
        `routes[0] ("shell").actions[1]: expected an action name (a function's name: lowercase letters, digits and '-', at most 63), got "Network_Isolate"`,
      ],
      [
        'a route lists an action twice',
        (t) => (t.routes[0].actions.push('label-pod'), t),
        'routes[0] ("shell").actions[2]: expected an action this route does not list already, got "label-pod"',
      ],
      [
        'a route names the forwarder itself',
        (t) => (t.routes[0].actions.push('forwarder'), t),
        'routes[0] ("shell").actions[2]: expected an action other than the forwarder itself (it would call itself), got "forwarder"',
      ],
      [
        'a route names a function that does not exist (known at build time)',
        (t) => ((t.routes[2].actions = ['kill-pod']), t),
        'routes[2] ("k8s-api").actions[0]: expected the name of a function in functions/ (delete-pod, label-pod, network-isolate), got "kill-pod"',
      ],
    ];
    for (const [what, mutate, expected] of cases) {
      it(`refuses a table where ${what}`, () => {
        assert.deepEqual(problemsOf(mutate(tableFixture('several'))), [expected]);
      });
    }

    it('reports several problems at once, each with its route', () => {
      const t = tableFixture('several');
      t.routes[0].mode = 'serial';
      t.routes[1].minimumPriority = 'loud';
      assert.deepEqual(problemsOf(t), [
        'routes[0] ("shell").mode: expected "parallel" or "sequential", got "serial"',
        'routes[1] ("critical-anywhere").minimumPriority: expected one of Debug, Informational, Notice, Warning, Error, Critical, Alert, Emergency (any case), got "loud"',
      ]);
    });

    it('accepts an empty table: the forwarder then skips every alert', () => {
      assert.deepEqual(table({ routes: [] }), { routes: [], actions: [] });
    });
  });

  describe('matching', () => {
    it('takes priorities from the minimum up, in any case, `info` as Informational', () => {
      for (const [minimum, priority, taken] of [
        ['Notice', 'Notice', true],
        ['Notice', 'Informational', false],
        ['Notice', 'Emergency', true],
        ['notice', 'Warning', true],
        ['CRITICAL', 'Error', false],
        ['CRITICAL', 'Critical', true],
        ['info', 'Informational', true],
        ['info', 'Debug', false],
      ] as const) {
        const reason = whyNot(route({ minimumPriority: minimum }), facts({ priority: priority }));
        assert.equal(reason === undefined, taken, `${minimum} / ${priority}: ${reason ?? 'taken'}`);
      }
      assert.equal(whyNot(route({ minimumPriority: 'Warning' }), facts({ priority: 'Notice' })), 'the priority Notice is below Warning');
    });

    it('reads the priority of an alert in any case before routing', () => {
      const a = alert('terminal-shell');
      a.priority = 'WARNING';
      const decoded = decodeOrThrow(FalcoAlert, a);
      assert.equal(whyNot(route({ minimumPriority: 'warning' }), facts({ priority: decoded.priority })), undefined);
    });

    it('selects rules by exact name, case included', () => {
      const r = route({ ruleGlobs: undefined, rules: ['Terminal shell in container'] });
      assert.equal(whyNot(r, facts()), undefined);
      assert.equal(whyNot(r, facts({ rule: 'terminal shell in container' })), 'the rule is not selected');
      assert.equal(whyNot(r, facts({ rule: 'Terminal shell in container ' })), 'the rule is not selected');
    });

    it('selects rules by glob: * any text, ? one character, the whole name', () => {
      const r = route({ ruleGlobs: ['Launch * Container', 'Write below ???'] });
      assert.equal(whyNot(r, facts({ rule: 'Launch Privileged Container' })), undefined);
      assert.equal(whyNot(r, facts({ rule: 'Launch Sensitive Mount Container' })), undefined);
      assert.equal(whyNot(r, facts({ rule: 'Write below etc' })), undefined);
      assert.equal(whyNot(r, facts({ rule: 'Write below root' })), 'the rule is not selected');
      assert.equal(whyNot(r, facts({ rule: 'Launch Privileged Container!' })), 'the rule is not selected');
      assert.ok(globMatches('*', ''));
      assert.ok(globMatches('a*b*c', 'aXXbYYc'));
      assert.ok(!globMatches('a*b*c', 'aXXbYY'));
      assert.ok(globMatches('**', 'anything'));
      assert.ok(!globMatches('', 'x'));
    });

    it('matches globs in linear steps on hostile input', () => {
      // `.*a.*a.*a.*b` would backtrack for ever on a long run of "a"; the loop gives up at once.
      assert.ok(!globMatches(`${'*a'.repeat(50)}b`, 'a'.repeat(100000)));
    });

    it('selects rules by regular expression, searched anywhere unless anchored', () => {
      const r = route({ ruleGlobs: undefined, ruleRegexes: ['K8S API', '^Write below (etc|root)$'] });
      assert.equal(whyNot(r, facts({ rule: 'Contact K8S API Server From Container' })), undefined);
      assert.equal(whyNot(r, facts({ rule: 'Write below root' })), undefined);
      assert.equal(whyNot(r, facts({ rule: 'Write below rpm database' })), 'the rule is not selected');
    });

    it('tries globs and regular expressions on rule names of any length: `*` selects every rule', () => {
      const long = `Terminal shell ${'x'.repeat(1024)}`;
      assert.equal(whyNot(route({}), facts({ rule: long, priority: 'Emergency' })), undefined, '* selects a long rule');
      assert.equal(whyNot(route({ ruleGlobs: ['Terminal shell *'] }), facts({ rule: long })), undefined);
      assert.equal(whyNot(route({ ruleGlobs: undefined, ruleRegexes: ['^Terminal shell x+$'] }), facts({ rule: long })), undefined);
      assert.equal(whyNot(route({ ruleGlobs: undefined, rules: [long] }), facts({ rule: long })), undefined, 'exact names still compare');
      assert.equal(whyNot(route({ ruleGlobs: ['Terminal shell *y'] }), facts({ rule: long })), 'the rule is not selected');
    });

    it('requires every tag of allOf and one of anyOf', () => {
      const r = route({ tags: { allOf: ['container', 'shell'], anyOf: ['mitre_execution', 'mitre_discovery'] } });
      assert.equal(whyNot(r, facts()), undefined);
      assert.equal(whyNot(r, facts({ tags: ['container', 'mitre_execution'] })), 'the tag(s) "shell" are missing');
      assert.equal(
        whyNot(r, facts({ tags: ['container', 'shell'] })),
        'none of the tags "mitre_execution", "mitre_discovery" is present',
      );
      assert.equal(whyNot(r, facts({ tags: [] })), 'the tag(s) "container", "shell" are missing');
      assert.equal(whyNot(route({}), facts({ tags: [] })), undefined, 'no tag criterion: tags do not matter');
    });

    it('compares the source, and an alert without one (old Falcosidekick) matches only routes without sources', () => {
      const r = route({ sources: ['syscall', 'k8saudit'] });
      assert.equal(whyNot(r, facts({ source: 'k8saudit' })), undefined);
      assert.equal(whyNot(r, facts({ source: 'internal' })), 'the source "internal" is not one of syscall, k8saudit');
      assert.equal(whyNot(r, facts({ source: undefined })), 'the source null is not one of syscall, k8saudit');
      assert.equal(whyNot(route({}), facts({ source: undefined })), undefined);
    });

    it('includes and excludes namespaces by name or glob', () => {
      const r = route({ namespaces: { include: ['prod', 'team-*'], exclude: ['team-infra'] } });
      assert.equal(whyNot(r, facts({ namespace: 'prod' })), undefined);
      assert.equal(whyNot(r, facts({ namespace: 'team-web' })), undefined);
      assert.equal(whyNot(r, facts({ namespace: 'team-infra' })), "the namespace 'team-infra' is excluded");
      assert.equal(whyNot(r, facts({ namespace: 'production' })), "the namespace 'production' is not included");
      assert.equal(whyNot(r, facts({ namespace: undefined })), 'the alert names no namespace');
      const onlyExclude = route({ namespaces: { exclude: ['kube-*'] } });
      assert.equal(whyNot(onlyExclude, facts({ namespace: 'kube-system' })), "the namespace 'kube-system' is excluded");
      assert.equal(whyNot(onlyExclude, facts({ namespace: undefined })), undefined, 'a host event is excluded by nothing');
    });

    it('reads the namespace from k8s.ns.name (ka.target.namespace for audit events), and refuses one that is not a name', () => {
      assert.equal(alertNamespace(decodeOrThrow(FalcoAlert, alert('packet-socket'))), 'red-ns');
      assert.equal(alertNamespace(decodeOrThrow(FalcoAlert, alert('terminal-shell-null-pod'))), undefined);
      const audit = { ...alert('terminal-shell'), source: 'k8saudit', output_fields: { 'ka.target.namespace': 'prod', 'k8s.ns.name': 'ignored' } };
      assert.equal(alertNamespace(decodeOrThrow(FalcoAlert, audit)), 'prod');
      const bad = alert('terminal-shell');
      bad.output_fields['k8s.ns.name'] = 'default/../kube-system';
      assert.throws(
        () => alertNamespace(decodeOrThrow(FalcoAlert, bad)),
        (error: unknown) =>
          error instanceof InvalidInputError &&
          error.message ===
            `alert: output_fields["k8s.ns.name"]: expected a namespace name (lowercase letters, digits and '-', at most 63), got "default/../kube-system"`,
      );
    });
  });

  describe('planning', () => {
    const several = () => {
      const result = parseRoutingTable(JSON.stringify(tableFixture('several')));
      assert.ok(result.ok);
      return result.table;
    };

    it('runs each action once, in the first matching route that names it', () => {
      // Given a Critical terminal shell: both "shell" and "critical-anywhere" take it, both name label-pod
      const plan = planFor(several(), facts({ priority: 'Critical' }));

      // Then
      assert.deepEqual(
        plan.routes.map((r) => [r.route.name, r.actions]),
        [
          ['shell', ['label-pod', 'network-isolate']],
          ['critical-anywhere', ['delete-pod']],
        ],
      );
      assert.deepEqual(Object.fromEntries(plan.routesOf), {
        'label-pod': ['shell', 'critical-anywhere'],
        'network-isolate': ['shell'],
        'delete-pod': ['critical-anywhere'],
      });
    });

    it('routes by regex, tags, source and namespace glob', () => {
      const a = decodeOrThrow(FalcoAlert, alert('contact-k8s-api'));
      const plan = planFor(several(), {
        rule: a.rule,
        priority: a.priority,
        tags: a.tags ?? [],
        source: a.source ?? undefined,
        namespace: alertNamespace(a),
      });
      assert.deepEqual(plan.routes.map((r) => r.route.name), ['k8s-api']);
    });

    it('says why each route refused an alert that none takes', () => {
      const plan = planFor(several(), facts({ rule: 'Write below etc', priority: 'Error', namespace: undefined }));
      assert.deepEqual(plan.routes, []);
      assert.deepEqual(plan.misses, [
        'shell: the rule is not selected',
        'critical-anywhere: the priority Error is below Critical',
        'k8s-api: the rule is not selected',
      ]);
    });
  });
});
