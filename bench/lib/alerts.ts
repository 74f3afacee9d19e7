/**
 * Falcosidekick-shaped alerts for the bench, from the fixtures (shared/PROTOCOLS.md sections 3 and 4); the Kubeless
 * event and context around them are the tests' own (test/helpers/fixtures.ts).
 */
import { randomUUID } from 'crypto';
import { readdirSync, readFileSync } from 'fs';
import * as path from 'path';
import { alert as fixture, FIXTURES } from '../../test/helpers/fixtures';

const ALERTS_DIR = path.join(FIXTURES, 'alerts');

/** Every alert fixture by name (file name without .json), as text: big integers such as evt.time stay intact. */
export function alertFixtures(): Map<string, string> {
  return new Map(
    readdirSync(ALERTS_DIR)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => [f.replace(/\.json$/, ''), readFileSync(path.join(ALERTS_DIR, f), 'utf8')]),
  );
}

/** The terminal-shell alert about `namespace/pod`, with its own uuid and time, as Falcosidekick sends it (JSON text). */
export function terminalShellAlert(namespace: string, pod: string): string {
  return podAlert('terminal-shell', namespace, pod);
}

/** The alert fixture `name` about `namespace/pod`, with its own uuid and time, as Falcosidekick sends it (JSON text). */
export function podAlert(name: string, namespace: string, pod: string): string {
  const alert = fixture(name);
  alert.uuid = randomUUID();
  alert.time = new Date().toISOString().replace('Z', '000000Z');
  alert.output_fields['k8s.ns.name'] = namespace;
  alert.output_fields['k8s.pod.name'] = pod;
  alert.output = `${String(alert.output).replace(/k8s\.ns=\S+/, `k8s.ns=${namespace}`).replace(/k8s\.pod=\S+/, `k8s.pod=${pod}`)}`;
  // In-cluster Falcosidekick ends the body with a newline.
  return `${JSON.stringify(alert)}\n`;
}
