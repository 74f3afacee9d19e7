import * as path from 'path';
import type { Action, PodAction } from '../../lib/action';
import type { ParamSpecs } from '../../lib/params';
import { discoverFunctions } from '../../build/discover';
import type { KubelessHandler, RunnerOptions } from '../../lib/runner';
import { actionHandler } from './recorded-handler';

export const ROOT = path.resolve(__dirname, '..', '..');

/** Every pod action of functions/, found as the build finds them: a new action is covered without an edit here. */
export function podActions(): PodAction[] {
  return discoverFunctions(ROOT)
    .map((f) => f.descriptor as Partial<PodAction>)
    .filter((d): d is PodAction => d.kind === 'pod-action');
}

export type NodeAction = Action<ParamSpecs, 'node'>;

/** Every action of functions/ on the node of the alert's pod (lib/targets/node.ts), found as the build finds them. */
export function nodeActions(): NodeAction[] {
  return discoverFunctions(ROOT)
    .map((f) => f.descriptor as Partial<NodeAction>)
    .filter((d): d is NodeAction => d.kind === 'node-action');
}

export type AuditObjectAction = Action<ParamSpecs, 'audit-object'>;

/** Every action on an audit event's object (delete-object), found as the build finds them. */
export function auditObjectActions(): AuditObjectAction[] {
  return discoverFunctions(ROOT)
    .map((f) => f.descriptor as Partial<AuditObjectAction>)
    .filter((d): d is AuditObjectAction => d.kind === 'audit-object-action');
}

/** An action that finds its target through the alert's pod: a pod action or a node action. */
export type PodOrNodeAction = PodAction | NodeAction;

/** An action of any kind of target: on the alert's pod, its node, or the audit alert's object. */
export type AnyAction = PodOrNodeAction | AuditObjectAction;

/** Its handler, answering once its queued Events are recorded (test/helpers/recorded-handler.ts; the runner is generic over the kind, a union of kinds is narrowed here). */
export function handlerOfAction(action: AnyAction, options: RunnerOptions): KubelessHandler {
  switch (action.kind) {
    case 'pod-action':
      return actionHandler(action, options);
    case 'node-action':
      return actionHandler(action, options);
    default:
      return actionHandler(action, options);
  }
}
