import * as path from 'path';
import type { Action, PodAction } from '../../lib/action';
import type { ParamSpecs } from '../../lib/params';
import { discoverFunctions } from '../../build/discover';

export const ROOT = path.resolve(__dirname, '..', '..');

/** Every pod action of functions/, found as the build finds them: a new action is covered without an edit here. */
export function podActions(): PodAction[] {
  return discoverFunctions(ROOT)
    .map((f) => f.descriptor as Partial<PodAction>)
    .filter((d): d is PodAction => d.kind === 'pod-action');
}

/** Every action on an audit event's object (delete-object), found as the build finds them. */
export function auditObjectActions(): Action<ParamSpecs, 'audit-object'>[] {
  return discoverFunctions(ROOT)
    .map((f) => f.descriptor as Partial<Action<ParamSpecs, 'audit-object'>>)
    .filter((d): d is Action<ParamSpecs, 'audit-object'> => d.kind === 'audit-object-action');
}
