// The Kubeless entry point: everything else lives in action.ts and lib/.
import action from './action';
import { actionHandler } from '../../lib/runner';

export const handler = actionHandler(action);
