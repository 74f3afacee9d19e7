// The Kubeless entry point: routing and invocation live in lib/router/, the default routes in routes.default.json.
import router from './router';
import { forwarderHandler } from '../../lib/router/runner';

export const handler = forwarderHandler(router);
