import { readFileSync } from 'fs';
import * as path from 'path';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');

/** The exact text of an alert fixture (big integers such as evt.time intact). */
export function alertText(name: string): string {
  return readFileSync(path.join(FIXTURES, 'alerts', `${name}.json`), 'utf8');
}

/** A fresh parsed copy of an alert fixture: tests may change it freely. */
export function alert(name: string): Record<string, any> {
  return JSON.parse(alertText(name));
}

/** A stand-in for Express's response: records the status a handler sets. */
export class ResponseStub {
  statusCode = 200;
  status(code: number): this {
    this.statusCode = code;
    return this;
  }
}

/**
 * The event the Kubeless runtime builds for a Falcosidekick POST (shared/PROTOCOLS.md sections 1 and 3):
 * `data` is the parsed JSON body; event-type falco; event-namespace the function's namespace; no event-time.
 */
export function kubelessEvent(data: unknown, eventId = '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f') {
  const response = new ResponseStub();
  const event = {
    data,
    'event-id': eventId,
    'event-type': 'falco',
    'event-time': undefined,
    'event-namespace': 'falco-response',
    extensions: { request: {}, response },
  };
  return { event, response };
}

/** The context the runtime passes: FUNC_TIMEOUT seconds. */
export function kubelessContext(timeoutSeconds = 30) {
  return { 'function-name': 'handler', timeout: timeoutSeconds, runtime: 'nodejs14', 'memory-limit': '128Mi' };
}
