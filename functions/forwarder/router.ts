import { AFTER_EDIT } from '../../lib/after-edit';
import { defineForwarder } from '../../lib/router/runner';
import routes from './routes.default.json';

/** The table's own description says what an edit does in the one wording the ConfigMap and docs/ use too. */
export const DEFAULT_ROUTES_DESCRIPTION = `Default routes of falco-response, in the ConfigMap forwarder-config; ${AFTER_EDIT.followed}.`;

export default defineForwarder({
  name: 'forwarder',
  description:
    'The one function Falcosidekick calls: decodes the alert once and invokes every action its routing table (a ConfigMap) selects, answering one result per action.',
  defaultRoutes: { description: DEFAULT_ROUTES_DESCRIPTION, ...routes },
});
