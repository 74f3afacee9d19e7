import * as path from 'path';
import type { PodAction } from '../../lib/action';
import { discoverFunctions } from '../../build/discover';

export const ROOT = path.resolve(__dirname, '..', '..');

/** Every pod action of functions/, found as the build finds them: a new action is covered without an edit here. */
export function podActions(): PodAction[] {
  return discoverFunctions(ROOT)
    .map((f) => f.descriptor as Partial<PodAction>)
    .filter((d): d is PodAction => d.kind === 'pod-action');
}
