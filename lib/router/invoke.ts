import * as http from 'http';
import type * as https from 'https';
import { clipped } from '../text';

/** What an action said, or why it said nothing. */
export type CallAnswer =
  | {
      readonly kind: 'answered';
      readonly httpStatus: number;
      /** The JSON body, or its text (cut short) when it is not JSON. */
      readonly body: unknown;
    }
  | { readonly kind: 'no-answer'; readonly error: string };

export interface CallRequest {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly timeoutMs: number;
  /** Said after a timeout: which limit it was. */
  readonly timeoutNote?: string;
}

/** The actions are ours and answer a few hundred bytes; more is read and dropped, never held. */
const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_TEXT_SHOWN = 1000;

/** How a caller reaches its peers: the actions over http (the default), or a webhook over https too. */
export interface CallerOptions {
  readonly secure?: boolean;
  /** What an unknown host name most likely means, said after the error; the default is the actions' Services. */
  readonly unknownHostHint?: (url: URL) => string;
}

/**
 * POSTs to the actions over keep-alive connections (one TCP handshake per action and socket, not per alert), at
 * most `maxSockets` at a time per action. The notifier posts to its webhook with one of its own (lib/router/notifier.ts).
 */
export class ActionCaller {
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly unknownHostHint: (url: URL) => string;

  constructor(maxSockets: number, options: CallerOptions = {}) {
    // https only for a caller that needs it (a webhook over https): loading it, and tls with it, took some 6 ms of
    // every cold start of the forwarder on Node 14, whose actions are called over http.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const transport: typeof http | typeof https = options.secure === true ? (require('https') as typeof https) : http;
    this.agent = new transport.Agent({ keepAlive: true, maxSockets });
    // The module, not its request function: looked up per call, as an interceptor (nock in tests) may swap it.
    this.transport = transport;
    this.unknownHostHint = options.unknownHostHint ?? serviceHint;
  }

  /** Never rejects: every failure, the timeout included, is an answer of kind `no-answer`. */
  post(request: CallRequest): Promise<CallAnswer> {
    return new Promise((resolve) => {
      let settled = false;
      let current: http.ClientRequest | undefined;
      const finish = (answer: CallAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(answer);
      };
      const timer = setTimeout(() => {
        finish({ kind: 'no-answer', error: `no answer within ${request.timeoutMs} ms${request.timeoutNote === undefined ? '' : ` (${request.timeoutNote})`}` });
        current?.destroy();
      }, request.timeoutMs);

      const send = (mayRetry: boolean) => {
        let outgoing: http.ClientRequest;
        try {
          outgoing = this.transport.request(
            request.url,
            { method: 'POST', agent: this.agent, headers: { ...request.headers, 'Content-Length': String(request.body.length) } },
            (response) => readAnswer(response, finish),
          );
        } catch (error) {
          finish({ kind: 'no-answer', error: (error as Error).message }); // e.g. a header value Node refuses
          return;
        }
        current = outgoing;
        outgoing.on('error', (error: NodeJS.ErrnoException) => {
          // A kept-alive socket reset as we reused it: most often the server had closed it idle and the request never
          // reached the action, but a reset after the request went out may follow a call the action did carry out.
          // Sending it once more on a fresh socket (the retry Node's documentation recommends) is safe because the
          // repeat carries the same event-id and body, and an action answers a repeat with its first answer and makes
          // no new Kubernetes call (lib/repeats.ts).
          if (mayRetry && outgoing.reusedSocket && error.code === 'ECONNRESET' && !settled) {
            send(false);
            return;
          }
          finish({ kind: 'no-answer', error: describeNetworkError(error, request.url, this.unknownHostHint) });
        });
        outgoing.end(request.body);
      };
      send(true);
    });
  }

  /** Closes the kept-alive sockets (tests, tools). */
  close(): void {
    this.agent.destroy();
  }
}

function readAnswer(response: http.IncomingMessage, finish: (answer: CallAnswer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  response.on('data', (chunk: Buffer) => {
    if (size < MAX_ANSWER_BYTES) chunks.push(chunk);
    size += chunk.length;
  });
  response.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8').slice(0, MAX_ANSWER_BYTES);
    finish({ kind: 'answered', httpStatus: response.statusCode ?? 0, body: size > MAX_ANSWER_BYTES ? clipped(text, MAX_TEXT_SHOWN, '… (cut)') : parsedOrText(text) });
  });
  // Node 12 signals a cut answer with 'aborted', later versions with 'error'; both end with 'close' before 'end'.
  response.on('close', () => {
    if (!response.complete) finish({ kind: 'no-answer', error: 'the connection closed before the answer was complete' });
  });
  response.on('error', () => undefined);
}

function parsedOrText(text: string): unknown {
  if (text === '') return '';
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return clipped(text, MAX_TEXT_SHOWN, '… (cut)');
  }
}

const serviceHint = (url: URL) => `no service ${url.hostname}: is the function deployed, in that namespace?`;

function describeNetworkError(error: NodeJS.ErrnoException, url: URL, unknownHostHint: (url: URL) => string): string {
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') return `${error.message} (${unknownHostHint(url)})`;
  return error.message;
}
