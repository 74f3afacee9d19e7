/**
 * The forwarder's routing table as the README has people change it: `kubectl edit configmap forwarder-config`, and
 * the wait for every forwarder pod to follow (each pod's kubelet updates its volume on its own schedule).
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { terminalShellAlert } from '../../e2e/helpers/sidekick';
import { FUNCTIONS_NAMESPACE, readyPods, resultsOf, sendFromClient, WORKLOAD_NAMESPACE, type Deployed } from './deploy';
import { getJson, kubectl, kubectlOk, waitFor } from './node';

const CONFIGMAP = 'forwarder-config';

/** The routing table's text as the ConfigMap holds it now. */
export async function routesText(): Promise<string> {
  return (await getJson(['configmap', CONFIGMAP, '-n', FUNCTIONS_NAMESPACE])).data['routes.json'];
}

/**
 * `kubectl -n falco-response edit configmap forwarder-config`, as the README says, with an editor that changes the
 * routing table as a person would.
 */
export async function editRoutes(change: (routes: any) => void): Promise<void> {
  const routes = JSON.parse(await routesText());
  change(routes);
  const dir = mkdtempSync(path.join(tmpdir(), 'falco-response-edit-'));
  try {
    const editor = path.join(dir, 'editor.js');
    writeFileSync(
      editor,
      "const fs = require('fs'); const f = process.argv[2]; const o = JSON.parse(fs.readFileSync(f, 'utf8'));\n" +
        "o.data['routes.json'] = process.env.NEW_ROUTES; fs.writeFileSync(f, JSON.stringify(o, null, 4));\n",
    );
    const text = `${JSON.stringify(routes, null, 2)}\n`;
    // With -o json, kubectl prints the edited object as the API server stored it.
    const stored = await kubectlOk(['-n', FUNCTIONS_NAMESPACE, 'edit', 'configmap', CONFIGMAP, '-o', 'json'], undefined, 60000, {
      KUBE_EDITOR: `${process.execPath} ${editor}`,
      NEW_ROUTES: text,
    });
    assert.equal(JSON.parse(stored).data['routes.json'], text, 'kubectl edit did not store the edited routing table');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Puts back a routing table read earlier with routesText (an after hook's undo: does not throw). */
export async function restoreRoutes(text: string): Promise<void> {
  const cm = await getJson(['configmap', CONFIGMAP, '-n', FUNCTIONS_NAMESPACE]);
  cm.data['routes.json'] = text;
  await kubectl(['replace', '-f', '-'], JSON.stringify(cm));
}

/**
 * Whether every forwarder pod invokes `action` (`invoked`) or not for a terminal-shell alert. Asked of each pod
 * directly by the client, about a pod that does not exist, so that nothing is done to any pod.
 */
async function everyForwarder(d: Deployed, action: string, invoked: boolean): Promise<true | undefined> {
  const pods = await readyPods(FUNCTIONS_NAMESPACE, 'function=forwarder');
  for (const pod of pods) {
    const a = await sendFromClient(d, terminalShellAlert(WORKLOAD_NAMESPACE, 'no-such-pod'), `http://${pod.status.podIP}:8080`);
    if (a.status !== 200 || (resultsOf(a)[action] !== undefined) !== invoked) return undefined;
  }
  return pods.length > 0 ? true : undefined;
}

/** Waits until every forwarder pod routes terminal-shell alerts to `action` (`invoked`) or no longer does. */
export function untilEveryForwarder(d: Deployed, action: string, invoked: boolean, timeoutMs = 120000): Promise<true> {
  return waitFor(`every forwarder pod ${invoked ? 'invoking' : 'no longer invoking'} ${action}`, () => everyForwarder(d, action, invoked), timeoutMs, 500);
}
