/** Falcosidekick-shaped alerts for the bench, from the fixtures (shared/PROTOCOLS.md sections 3 and 4). */
import { randomUUID } from 'crypto';
import { readdirSync, readFileSync } from 'fs';
import * as path from 'path';
import { ROOT } from '../../build/main';

export const ALERTS_DIR = path.join(ROOT, 'test', 'fixtures', 'alerts');

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
  const alert = JSON.parse(readFileSync(path.join(ALERTS_DIR, 'terminal-shell.json'), 'utf8')) as Record<string, any>;
  alert.uuid = randomUUID();
  alert.time = new Date().toISOString().replace('Z', '000000Z');
  alert.output_fields['k8s.ns.name'] = namespace;
  alert.output_fields['k8s.pod.name'] = pod;
  alert.output = `${String(alert.output).replace(/k8s\.ns=\S+/, `k8s.ns=${namespace}`).replace(/k8s\.pod=\S+/, `k8s.pod=${pod}`)}`;
  // In-cluster Falcosidekick ends the body with a newline.
  return `${JSON.stringify(alert)}\n`;
}

/** A stand-in for Express's response: the handler sets the status on it. */
export class ResponseStub {
  statusCode = 200;
  status(code: number): this {
    this.statusCode = code;
    return this;
  }
}

/** The event the Kubeless runtime builds for a Falcosidekick POST (shared/PROTOCOLS.md section 1). */
export function kubelessEvent(data: unknown, response: ResponseStub = new ResponseStub()): Record<string, unknown> {
  return {
    data,
    'event-id': randomUUID(),
    'event-type': 'falco',
    'event-time': undefined,
    'event-namespace': 'falco-response',
    extensions: { request: {}, response },
  };
}

export const KUBELESS_CONTEXT = { 'function-name': 'handler', timeout: 30, runtime: 'nodejs14', 'memory-limit': '128Mi' };
