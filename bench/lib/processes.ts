/** Child processes of the bench: every one bounded by a timeout and stopped by its own pid. */
import { spawn, type ChildProcess, type SpawnOptions } from 'child_process';

export class CommandFailedError extends Error {
  override name = 'CommandFailedError';
}

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Commands that an abort may interrupt (up.sh, cold-start probes), stopped before the cleanups run. */
const interruptible = new Set<ChildProcess>();

/**
 * Runs a command to its end, or kills it after `timeoutMs`; never rejects on a non-zero exit (the caller decides).
 * Every command gets its own process group: Ctrl-C reaches the bench alone, which then stops its commands in order
 * (a down.sh cut short by the same Ctrl-C would leave the cluster running).
 */
export function run(
  command: string,
  args: readonly string[],
  options: SpawnOptions & { timeoutMs: number; interruptible?: boolean },
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const { timeoutMs, interruptible: mayInterrupt = true, ...spawnOptions } = options;
    const child = spawn(command, args, { ...spawnOptions, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (mayInterrupt) interruptible.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new CommandFailedError(`${command} ${args.join(' ')} did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      interruptible.delete(child);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      interruptible.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Stops a long-running child we started: TERM, then KILL after `graceMs`. */
export function stop(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Cleanups that must run however the bench ends: normal end, error, Ctrl-C or the watchdog. */
const cleanups: (() => Promise<void>)[] = [];

export function onCleanup(cleanup: () => Promise<void>): () => void {
  cleanups.push(cleanup);
  return () => {
    const at = cleanups.indexOf(cleanup);
    if (at !== -1) cleanups.splice(at, 1);
  };
}

export async function runCleanups(): Promise<void> {
  await Promise.all([...interruptible].map((child) => stop(child)));
  while (cleanups.length > 0) {
    const cleanup = cleanups.pop()!;
    try {
      await cleanup();
    } catch (error) {
      process.stderr.write(`[bench] cleanup failed: ${(error as Error).message}\n`);
    }
  }
}
