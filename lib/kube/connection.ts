import { promises as fs, readFileSync } from 'fs';
import * as path from 'path';
import { ConfigurationError } from '../errors';

/** Where and how to reach the API server. The token is read again for every request: it rotates. */
export interface Connection {
  readonly server: URL;
  readonly ca?: Buffer;
  readonly clientCert?: Buffer;
  readonly clientKey?: Buffer;
  readonly insecureSkipTlsVerify: boolean;
  readonly bearerToken: () => Promise<string | undefined>;
  /** Where the credentials come from, for messages. */
  readonly source: string;
  /** The namespace the function itself runs in, when known: it is never acted upon. */
  readonly ownNamespace?: string;
}

export const SERVICEACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * `KUBECONFIG` (a kubeconfig file in JSON form) when set; else the in-cluster ServiceAccount, whose folder
 * `KUBE_SERVICEACCOUNT_DIR` may move (for tests).
 */
export function loadConnection(env: Env): Connection {
  const kubeconfig = env.KUBECONFIG;
  if (kubeconfig !== undefined && kubeconfig !== '') return kubeconfigConnection(kubeconfig.split(path.delimiter)[0]);
  return inClusterConnection(env);
}

export function inClusterConnection(env: Env): Connection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (host === undefined || host === '') {
    throw new ConfigurationError([
      'no Kubernetes API to talk to: KUBERNETES_SERVICE_HOST is not set (not in a cluster) and neither is KUBECONFIG',
    ]);
  }
  const dir = env.KUBE_SERVICEACCOUNT_DIR ?? SERVICEACCOUNT_DIR;
  const tokenFile = path.join(dir, 'token');
  const ca = readRequired(path.join(dir, 'ca.crt'), 'the ServiceAccount CA');
  const ownNamespace = readOptional(path.join(dir, 'namespace'));
  const hostPart = host.includes(':') ? `[${host}]` : host; // IPv6 service addresses
  return {
    server: new URL(`https://${hostPart}:${port}`),
    ca,
    insecureSkipTlsVerify: false,
    bearerToken: async () => (await fs.readFile(tokenFile, 'utf8')).trim(),
    source: `the ServiceAccount token in ${dir}`,
    ...(ownNamespace === undefined ? {} : { ownNamespace }),
  };
}

interface KubeconfigJson {
  'current-context'?: string;
  contexts?: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
  clusters?: {
    name: string;
    cluster: {
      server: string;
      'certificate-authority'?: string;
      'certificate-authority-data'?: string;
      'insecure-skip-tls-verify'?: boolean;
    };
  }[];
  users?: {
    name: string;
    user: {
      token?: string;
      tokenFile?: string;
      'client-certificate'?: string;
      'client-certificate-data'?: string;
      'client-key'?: string;
      'client-key-data'?: string;
    };
  }[];
}

/**
 * A kubeconfig in JSON form (`kubectl config view --raw --flatten -o json`): the bundles carry no YAML parser, to
 * stay small; the project's own tools convert YAML kubeconfigs before they start a bundle.
 */
export function kubeconfigConnection(file: string): Connection {
  const text = readRequired(file, 'the kubeconfig').toString('utf8');
  let config: KubeconfigJson;
  try {
    config = JSON.parse(text) as KubeconfigJson;
  } catch {
    throw new ConfigurationError([
      `KUBECONFIG: ${file} is not JSON; convert it with \`kubectl config view --raw --flatten -o json > kubeconfig.json\``,
    ]);
  }
  const dir = path.dirname(file);
  const resolve = (p: string) => (path.isAbsolute(p) ? p : path.join(dir, p));
  const contextName = config['current-context'];
  const context = config.contexts?.find((c) => c.name === contextName)?.context;
  const cluster = config.clusters?.find((c) => c.name === context?.cluster)?.cluster;
  const user = config.users?.find((u) => u.name === context?.user)?.user ?? {};
  if (context === undefined || cluster === undefined) {
    throw new ConfigurationError([`KUBECONFIG: ${file} has no usable current-context (got ${JSON.stringify(contextName)})`]);
  }
  const data = (inline: string | undefined, fileName: string | undefined, what: string) =>
    inline !== undefined ? Buffer.from(inline, 'base64') : fileName !== undefined ? readRequired(resolve(fileName), what) : undefined;
  const ca = data(cluster['certificate-authority-data'], cluster['certificate-authority'], 'the kubeconfig CA');
  const clientCert = data(user['client-certificate-data'], user['client-certificate'], 'the client certificate');
  const clientKey = data(user['client-key-data'], user['client-key'], 'the client key');
  const token = user.token;
  const tokenFile = user.tokenFile === undefined ? undefined : resolve(user.tokenFile);
  return {
    server: new URL(cluster.server),
    ...(ca === undefined ? {} : { ca }),
    ...(clientCert === undefined ? {} : { clientCert }),
    ...(clientKey === undefined ? {} : { clientKey }),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    bearerToken: async () => (tokenFile !== undefined ? (await fs.readFile(tokenFile, 'utf8')).trim() : token),
    source: `the kubeconfig ${file}`,
  };
}

function readRequired(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigurationError([`cannot read ${what} at ${file}: ${(error as Error).message}`]);
  }
}

/** The file's text, trimmed, or `undefined` when it cannot be read (the ServiceAccount's namespace file outside a cluster). */
export function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}
