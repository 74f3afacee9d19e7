/**
 * Errors that every layer may throw, lib/kube included: they name no alert, no action and no parameter codec, so that
 * the Kubernetes client does not import the alert domain to report a broken kubeconfig.
 */

/** A configuration that cannot be used: each problem names the variable, what it takes and what it holds. */
export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}
