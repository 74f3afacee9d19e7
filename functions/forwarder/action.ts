import { defineForwarder } from '../../lib/forwarder/runner';
import defaultRoutes from './routes.default.json';

export default defineForwarder({
  name: 'forwarder',
  description:
    'The one function Falcosidekick calls: decodes the alert once and invokes every action its routing table (a ConfigMap) selects, answering one result per action.',
  defaultRoutes,
});
