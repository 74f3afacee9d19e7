import * as E from 'fp-ts/Either';
import * as DE from 'io-ts/DecodeError';
import * as D from 'io-ts/Decoder';
import * as FS from 'io-ts/FreeSemigroup';
import { describeValue, list, literal, named, object, type Props, reportErrors } from '../decode';
import { isDns1123Label } from '../names';
import { atLeast, PriorityCodec, type Priority } from '../priority';
import { compileLinearRegExp, globMatches, MAX_PATTERN_LENGTH, type LinearRegExp } from './patterns';

/**
 * The routing table: which actions the forwarder invokes for which alerts. Operators write it (a ConfigMap), so
 * every mistake is reported with the route's index and name, the field, what it takes and what it holds; a field
 * nobody knows is an error too, because a misspelt criterion would silently widen a route.
 */

/** How a route runs its actions; see DEFAULT_MODE for why parallel is the default. */
export type RouteMode = 'parallel' | 'sequential';

/**
 * Parallel by default: containment is a race against an attacker who already has a shell, every action bounds its
 * own work, and in parallel a slow or failing action neither delays nor prevents the others. `sequential` is for
 * actions that depend on an earlier one's effect (label, then isolate by that label); it stops at the first failure.
 */
export const DEFAULT_MODE: RouteMode = 'parallel';

/** Decodes like `object(required, optional)`, and fails on any other key. */
function strictObject<R extends Props, O extends Props>(name: string, required: R, optional: O) {
  const inner = object(required, optional, name);
  const known = [...Object.keys(required), ...Object.keys(optional)];
  const expected = `a known field (the fields are ${known.join(', ')})`;
  return {
    decode: (u: unknown) => {
      const result = inner.decode(u);
      if (typeof u !== 'object' || u === null || Array.isArray(u)) return result;
      const record = u as Record<string, unknown>;
      const unknownKeys = Object.keys(record).filter((key) => !known.includes(key));
      if (unknownKeys.length === 0) return result;
      const extra = unknownKeys.map((key) => FS.of(DE.key(key, DE.optional, FS.of(DE.leaf(record[key], expected))))).reduce(FS.concat);
      return E.left(E.isLeft(result) ? FS.concat(extra, result.left) : extra);
    },
  };
}

/** A string checked (and maybe compiled) by `parse`, whose failure says what was expected. */
function checkedString<A = string>(name: string, parse: (s: string) => { ok: true; value: A } | { ok: false; expected: string }): D.Decoder<unknown, A> {
  return {
    decode: (u) => {
      if (typeof u !== 'string') return D.failure(u, name);
      const parsed = parse(u);
      return parsed.ok ? D.success(parsed.value) : D.failure(u, parsed.expected);
    },
  };
}

const routeName = checkedString('a route name (lowercase letters, digits and \'-\', at most 63)', (s) =>
  isDns1123Label(s) ? { ok: true, value: s } : { ok: false, expected: "a route name (lowercase letters, digits and '-', at most 63)" },
);

const ACTION_NAME = "an action name (a function's name: lowercase letters, digits and '-', at most 63)";
const actionName = checkedString(ACTION_NAME, (s) => (isDns1123Label(s) ? { ok: true, value: s } : { ok: false, expected: ACTION_NAME }));

const RULE_NAME = 'a Falco rule name';
const ruleName = checkedString(RULE_NAME, (s) => (s.trim() !== '' ? { ok: true, value: s } : { ok: false, expected: RULE_NAME }));

const text = checkedString('text', (s) => ({ ok: true, value: s }));

const TAG = 'a tag';
const tag = checkedString(TAG, (s) => (s !== '' ? { ok: true, value: s } : { ok: false, expected: TAG }));

const SOURCE = 'an event source such as syscall or k8s_audit';
const source = checkedString(SOURCE, (s) => (s.trim() !== '' ? { ok: true, value: s } : { ok: false, expected: SOURCE }));

const GLOB = `a glob of 1 to ${MAX_PATTERN_LENGTH} characters ('*' any text, '?' one character)`;
const glob = checkedString(GLOB, (s) => (s !== '' && s.length <= MAX_PATTERN_LENGTH ? { ok: true, value: s } : { ok: false, expected: GLOB }));

const REGEX = `a regular expression of 1 to ${MAX_PATTERN_LENGTH} characters`;
const REGEX_SUBSET = `${REGEX} in the syntax matched in linear time (see the README)`;
const regex = checkedString<LinearRegExp>(REGEX, (s) => {
  if (s === '' || s.length > MAX_PATTERN_LENGTH) return { ok: false, expected: REGEX };
  try {
    // JavaScript's own parser first, for its own message; the pattern is never run by it.
    new RegExp(s);
  } catch (error) {
    return { ok: false, expected: `${REGEX} (${(error as Error).message})` };
  }
  const compiled = compileLinearRegExp(s);
  return compiled.ok ? { ok: true, value: compiled.regex } : { ok: false, expected: `${REGEX_SUBSET}, without ${compiled.problem}` };
});

const NAMESPACE_PATTERN = "a namespace name or a glob of one (lowercase letters, digits, '-', '*' and '?', at most 63)";
const namespacePattern = checkedString(NAMESPACE_PATTERN, (s) =>
  /^[-a-z0-9*?]{1,63}$/.test(s) ? { ok: true, value: s } : { ok: false, expected: NAMESPACE_PATTERN },
);

const mode = named('"parallel" or "sequential"', literal('parallel', 'sequential'));

const listOf = <A>(item: D.Decoder<unknown, A>, what: string) => list(item, `a list of ${what}`);

const RouteCodec = strictObject(
  'a route',
  {
    name: routeName,
    actions: listOf(actionName, 'action names'),
  },
  {
    description: text,
    rules: listOf(ruleName, 'Falco rule names'),
    ruleGlobs: listOf(glob, 'globs'),
    ruleRegexes: listOf(regex, 'regular expressions'),
    minimumPriority: PriorityCodec,
    tags: strictObject('an object with allOf and/or anyOf', {}, { allOf: listOf(tag, 'tags'), anyOf: listOf(tag, 'tags') }),
    sources: listOf(source, 'event sources'),
    namespaces: strictObject(
      'an object with include and/or exclude',
      {},
      { include: listOf(namespacePattern, 'namespace names or globs'), exclude: listOf(namespacePattern, 'namespace names or globs') },
    ),
    mode,
  },
);

const TableCodec = strictObject('a routing table: an object with a list of routes', { routes: listOf(RouteCodec, 'routes') }, { description: text });

/** One route, checked and compiled. */
export interface Route {
  readonly name: string;
  readonly rules: readonly string[];
  readonly ruleGlobs: readonly string[];
  readonly ruleRegexes: readonly LinearRegExp[];
  readonly minimumPriority: Priority;
  readonly tagsAllOf: readonly string[];
  readonly tagsAnyOf: readonly string[];
  /** Undefined: any source, also none. */
  readonly sources: readonly string[] | undefined;
  /** Undefined: any namespace, also none. */
  readonly namespacesInclude: readonly string[] | undefined;
  readonly namespacesExclude: readonly string[];
  readonly actions: readonly string[];
  readonly mode: RouteMode;
}

export interface RoutingTable {
  readonly routes: readonly Route[];
  /** Every action some route names, each once, in the order of first appearance. */
  readonly actions: readonly string[];
}

export interface TableOptions {
  /** The forwarder's own name: a route to it would make it call itself for ever. */
  readonly self?: string;
  /** The functions that exist (known at build time): a route to any other is refused. */
  readonly functions?: readonly string[];
}

export type TableResult = { readonly ok: true; readonly table: RoutingTable } | { readonly ok: false; readonly problems: readonly string[] };

/** The label of a route in messages: `routes[2] ("shell")`, or `routes[2]` when it has no usable name. */
function routeLabel(raw: unknown, index: number): string {
  const name = (raw as { routes?: { name?: unknown }[] } | null)?.routes?.[index]?.name;
  return typeof name === 'string' && name.length <= 63 ? `routes[${index}] (${JSON.stringify(name)})` : `routes[${index}]`;
}

/**
 * Reads a routing table from its JSON text. Every problem is one line such as
 * `routes[0] ("shell").minimumPriority: expected one of Debug, …, got "loud"`.
 */
export function parseRoutingTable(text: string, options: TableOptions = {}): TableResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text) as unknown;
  } catch (error) {
    return { ok: false, problems: [`the routing table is not JSON: ${(error as Error).message}`] };
  }
  const decoded = TableCodec.decode(raw);
  if (E.isLeft(decoded)) {
    return { ok: false, problems: reportErrors(decoded.left).map((line) => line.replace(/^routes\[(\d+)\]/, (_, i: string) => routeLabel(raw, Number(i)))) };
  }
  const problems: string[] = [];
  const firstByName = new Map<string, number>();
  decoded.right.routes.forEach((route, index) => {
    const label = routeLabel(raw, index);
    const earlier = firstByName.get(route.name);
    if (earlier !== undefined) {
      problems.push(`${label}.name: expected a name no other route has (routes[${earlier}] has it), got ${describeValue(route.name)}`);
    } else {
      firstByName.set(route.name, index);
    }
    if ((route.rules ?? []).length + (route.ruleGlobs ?? []).length + (route.ruleRegexes ?? []).length === 0) {
      problems.push(`${label}: expected at least one of rules, ruleGlobs or ruleRegexes (ruleGlobs ["*"] selects every rule), got none`);
    }
    if (route.actions.length === 0) problems.push(`${label}.actions: expected at least one action name, got []`);
    route.actions.forEach((action, i) => {
      const where = `${label}.actions[${i}]`;
      if (route.actions.indexOf(action) < i) {
        problems.push(`${where}: expected an action this route does not list already, got ${describeValue(action)}`);
      } else if (action === options.self) {
        problems.push(`${where}: expected an action other than the forwarder itself (it would call itself), got ${describeValue(action)}`);
      } else if (options.functions !== undefined && !options.functions.includes(action)) {
        const known = options.functions.filter((f) => f !== options.self).join(', ');
        problems.push(`${where}: expected the name of a function in functions/ (${known}), got ${describeValue(action)}`);
      }
    });
  });
  if (problems.length > 0) return { ok: false, problems };
  const routes = decoded.right.routes.map(
    (r): Route => ({
      name: r.name,
      rules: r.rules ?? [],
      ruleGlobs: r.ruleGlobs ?? [],
      ruleRegexes: r.ruleRegexes ?? [],
      minimumPriority: r.minimumPriority ?? 'Debug',
      tagsAllOf: r.tags?.allOf ?? [],
      tagsAnyOf: r.tags?.anyOf ?? [],
      sources: r.sources,
      namespacesInclude: r.namespaces?.include,
      namespacesExclude: r.namespaces?.exclude ?? [],
      actions: r.actions,
      mode: r.mode ?? DEFAULT_MODE,
    }),
  );
  const actions = [...new Set(routes.flatMap((r) => r.actions))];
  return { ok: true, table: { routes, actions } };
}

/** What routing looks at in an alert, already decoded and validated. */
export interface AlertFacts {
  readonly rule: string;
  readonly priority: Priority;
  readonly tags: readonly string[];
  readonly source: string | undefined;
  readonly namespace: string | undefined;
}

function ruleSelected(route: Route, rule: string): boolean {
  // Every rule, whatever its length: both matchers take time linear in it (lib/router/patterns.ts).
  if (route.rules.includes(rule)) return true;
  return route.ruleGlobs.some((g) => globMatches(g, rule)) || route.ruleRegexes.some((r) => r.test(rule));
}

/**
 * The tags and source as routing reads them: a list of strings and a string, or none. The decoder guarantees both;
 * this keeps a criterion from ever matching by accident (a text's `includes` matches a substring).
 */
function taggedFacts(facts: AlertFacts): { readonly tags: readonly string[]; readonly source: string | undefined } {
  const tags: unknown = facts.tags;
  const source: unknown = facts.source;
  return {
    tags: Array.isArray(tags) ? tags.filter((tag): tag is string => typeof tag === 'string') : [],
    source: typeof source === 'string' ? source : undefined,
  };
}

/** Why a route does not take an alert, or undefined when it does. The first criterion that fails is named. */
export function whyNot(route: Route, facts: AlertFacts): string | undefined {
  if (!ruleSelected(route, facts.rule)) return 'the rule is not selected';
  if (!atLeast(facts.priority, route.minimumPriority)) return `the priority ${facts.priority} is below ${route.minimumPriority}`;
  const { tags, source } = taggedFacts(facts);
  const missing = route.tagsAllOf.filter((tag) => !tags.includes(tag));
  if (missing.length > 0) return `the tag(s) ${missing.map((m) => describeValue(m)).join(', ')} are missing`;
  if (route.tagsAnyOf.length > 0 && !route.tagsAnyOf.some((tag) => tags.includes(tag))) {
    return `none of the tags ${route.tagsAnyOf.map((m) => describeValue(m)).join(', ')} is present`;
  }
  if (route.sources !== undefined && (source === undefined || !route.sources.includes(source))) {
    return `the source ${describeValue(source ?? null)} is not one of ${route.sources.join(', ')}`;
  }
  const ns = facts.namespace;
  if (route.namespacesInclude !== undefined && (ns === undefined || !route.namespacesInclude.some((p) => globMatches(p, ns)))) {
    return ns === undefined ? 'the alert names no namespace' : `the namespace '${ns}' is not included`;
  }
  if (ns !== undefined && route.namespacesExclude.some((p) => globMatches(p, ns))) return `the namespace '${ns}' is excluded`;
  return undefined;
}

/** The actions of one matching route, less those an earlier matching route already runs. */
export interface PlannedRoute {
  readonly route: Route;
  readonly actions: readonly string[];
}

export interface Plan {
  /** Matching routes, in table order, each with the actions it still runs (possibly none). */
  readonly routes: readonly PlannedRoute[];
  /** For each action that runs, every matching route that names it. */
  readonly routesOf: ReadonlyMap<string, readonly string[]>;
  /** For an alert no route takes: why each route (the first few) refused it. */
  readonly misses: readonly string[];
}

const MAX_MISSES_SHOWN = 5;

/**
 * Which actions run for an alert. Each action runs once, in the first matching route that names it; a later
 * sequential route runs its remaining actions in its own order.
 */
export function planFor(table: RoutingTable, facts: AlertFacts): Plan {
  const routes: PlannedRoute[] = [];
  const routesOf = new Map<string, string[]>();
  const misses: string[] = [];
  for (const route of table.routes) {
    const reason = whyNot(route, facts);
    if (reason !== undefined) {
      if (misses.length < MAX_MISSES_SHOWN) misses.push(`${route.name}: ${reason}`);
      continue;
    }
    const actions = route.actions.filter((a) => !routesOf.has(a));
    for (const action of route.actions) routesOf.set(action, [...(routesOf.get(action) ?? []), route.name]);
    routes.push({ route, actions });
  }
  if (routes.length === 0 && table.routes.length > MAX_MISSES_SHOWN) {
    misses.push(`and ${table.routes.length - MAX_MISSES_SHOWN} more route(s)`);
  }
  return { routes, routesOf, misses };
}
