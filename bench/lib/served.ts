/**
 * The functions as the bench's cluster sections serve them: each built bundle in the local runtime, in its own
 * process, the actions with the admin kubeconfig of the bench's cluster, the forwarder calling them on loopback
 * (ACTION_ENDPOINTS) with the routing table given.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'fs';
import * as path from 'path';
import forwarder from '../../functions/forwarder/router';
import type { Artifacts } from './artifacts';
import { startRuntimeProcess, type RuntimeProcess } from './runtime-process';

/** The forwarder's default routing table, as its ConfigMap ships it. */
export const DEFAULT_ROUTES = forwarder.configFiles[0].content;

/** A routing table that sends the terminal-shell rule to these actions only. */
export function shellRoutes(actions: readonly string[]): string {
  return JSON.stringify({ routes: [{ name: 'terminal-shell', rules: ['Terminal shell in container'], minimumPriority: 'Notice', actions }] });
}

/** A function of `functionsDir` in the runtime, its log in a folder of its own under `logDir`. */
export function serve(
  artifacts: Artifacts,
  options: { name: string; env: Record<string, string>; logDir: string; functionsDir?: string },
): Promise<RuntimeProcess> {
  mkdirSync(options.logDir, { recursive: true });
  return startRuntimeProcess({
    runtimePath: artifacts.runtimePath,
    exitWithParentPath: artifacts.exitWithParentPath,
    functionsDir: options.functionsDir ?? artifacts.functionsDir,
    name: options.name,
    env: options.env,
    logDir: mkdtempSync(path.join(options.logDir, `${options.name}-`)),
  });
}

/** An action acting with the admin kubeconfig, on every rule (RULES=*), otherwise with its defaults. */
export function serveAction(artifacts: Artifacts, name: string, kubeconfig: string, logDir: string): Promise<RuntimeProcess> {
  return serve(artifacts, { name, env: { KUBECONFIG: kubeconfig, RULES: '*' }, logDir });
}

/** The forwarder with this routing table, calling the actions at their loopback ports. */
export function serveForwarder(artifacts: Artifacts, routes: string, actions: ReadonlyMap<string, RuntimeProcess>, logDir: string): Promise<RuntimeProcess> {
  mkdirSync(logDir, { recursive: true });
  const file = path.join(mkdtempSync(path.join(logDir, 'routes-')), 'routes.json');
  writeFileSync(file, routes);
  const endpoints = Object.fromEntries([...actions].map(([name, served]) => [name, `http://127.0.0.1:${served.port}/`]));
  return serve(artifacts, { name: 'forwarder', env: { ROUTES_FILE: file, ACTION_ENDPOINTS: JSON.stringify(endpoints) }, logDir });
}
