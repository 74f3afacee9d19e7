// The Kubeless entry point: routing and invocation live in lib/forwarder/, the default routes in routes.default.json.
import action from './action';
import { forwarderHandler } from '../../lib/forwarder/runner';

export const handler = forwarderHandler(action);
