import type { Action } from '../../lib/action';
import type { ParamSpecs } from '../../lib/params';
import type { TargetKind } from '../../lib/resolve';
import { actionHandler as liveHandler, type RunnerOptions } from '../../lib/runner';

/**
 * The runner's handler, each answer given back once the audit Events queued so far are recorded too (lib/runner.ts
 * records them after the answer): a test reads the fake cluster and the log as they are when the call's work is over.
 * The order itself, answer first, then the Event, is tested on the live handler (test/unit/speed.test.ts).
 */
export function actionHandler<P extends ParamSpecs, K extends TargetKind>(action: Action<P, K>, options: RunnerOptions = {}): ReturnType<typeof liveHandler> {
  const live = liveHandler(action, options);
  const settled = async (event: unknown, context: unknown) => {
    const answer = await live(event, context);
    await live.drain();
    return answer;
  };
  return Object.assign(settled, { drain: () => live.drain() });
}

/** `actionHandler`, under the name the pod actions' tests use. */
export const podActionHandler = actionHandler;
