import { execFileSync } from 'child_process';
import * as os from 'os';
import type { Machine } from './report';

export function machine(node14: string | undefined): Machine {
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: { current: process.version, ...(node14 === undefined ? {} : { node14 }) },
  };
}

/** The commit the figures belong to, and whether the tree had local changes (others may be editing it). */
export function gitState(root: string): { commit: string; dirty: boolean } | undefined {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return undefined;
  }
}
