/**
 * One function served by the local Kubeless-compatible runtime (dist/runtime/kubeless-runtime.js) in its own
 * process, and a Falcosidekick-like client that POSTs alerts to it over keep-alive connections.
 */
import { spawn, type ChildProcess } from 'child_process';
import { closeSync, openSync, readFileSync } from 'fs';
import * as http from 'http';
import * as path from 'path';
import { runtimeEnv } from '../../lib/kubeless';
import { onCleanup, stop } from './processes';

export interface RuntimeProcess {
  readonly port: number;
  readonly logFile: string;
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 15000;

/**
 * `BENCH_CPU_PROF=<folder>`: every runtime the bench serves writes a V8 CPU profile there when it stops (node
 * --cpu-prof), named after its function, to see where an alert's time goes (open it in Chrome's DevTools).
 */
function profiling(name: string): string[] {
  const folder = process.env.BENCH_CPU_PROF;
  if (folder === undefined || folder === '') return [];
  return ['--cpu-prof', `--cpu-prof-dir=${path.resolve(folder)}`, `--cpu-prof-name=${name}-${Date.now()}-${process.pid}.cpuprofile`];
}

/** Starts the runtime on a free loopback port; its logs (access log, one JSON line per alert) go to a file. */
export async function startRuntimeProcess(options: {
  runtimePath: string;
  exitWithParentPath: string;
  functionsDir: string;
  name: string;
  env: Record<string, string>;
  logDir: string;
}): Promise<RuntimeProcess> {
  const logFile = path.join(options.logDir, `${options.name}.runtime.log`);
  const fd = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    // Its own process group, as every child of the bench: a Ctrl-C reaches the bench, which stops it.
    child = spawn(process.execPath, [...profiling(options.name), '-r', options.exitWithParentPath, options.runtimePath], {
      detached: true,
      env: {
        PATH: process.env.PATH ?? '',
        ...runtimeEnv({ modName: options.name, installVolume: options.functionsDir, timeoutSeconds: 30, runtime: 'nodejs14', port: 0, host: '127.0.0.1' }),
        ...options.env,
      },
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const forget = onCleanup(() => stop(child));
  const close = async () => {
    forget();
    await stop(child);
  };
  // The runtime prints {"message":"listening","port":…} once it listens.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const log = readFileSync(logFile, 'utf8');
    const line = log.split('\n').find((l) => l.includes('"listening"'));
    if (line !== undefined) return { port: (JSON.parse(line) as { port: number }).port, logFile, close };
    if (child.exitCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`the runtime for ${options.name} did not start: ${log.trim().split('\n').slice(-5).join(' | ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** POSTs alerts as Falcosidekick's Kubeless output does (shared/PROTOCOLS.md section 3). */
export class SidekickClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private sequence = 0;

  constructor(private readonly port: number) {}

  post(body: string): Promise<Answer> {
    const id = (this.sequence++).toString(16).padStart(12, '0');
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          method: 'POST',
          host: '127.0.0.1',
          port: this.port,
          path: '/',
          agent: this.agent,
          timeout: 30000,
          headers: {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
            'User-Agent': 'Falcosidekick',
            'event-id': `6f1d3c9e-1b7a-4c2d-9e8f-${id}`,
            'event-type': 'falco',
            'event-namespace': 'falco-response',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
