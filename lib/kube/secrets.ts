import * as D from 'io-ts/Decoder';
import { list, literal, object } from '../decode';
import { checkWritten, decodedOrFail, deletedStatus, isNotFound, stringMap } from './answers';
import type { Kube } from './client';
import { isApiStatus, isApiStatusAfterPossiblyAppliedAttempt, KubeAnswerError, type Operation } from './errors';
import type { LabelSelectorText, NamespaceName, ObjectName } from '../names';
import { apiPath, withQuery } from './refs';

/** A Secret by namespace and name. */
export interface SecretRef {
  readonly namespace: NamespaceName;
  readonly name: ObjectName;
}

/** A Secret as this project writes one: its data base64, as the API server takes it. */
export interface SecretBody {
  readonly apiVersion: 'v1';
  readonly kind: 'Secret';
  readonly type: 'Opaque';
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
  };
  readonly data: Readonly<Record<string, string>>;
}

/** The API server refuses a Secret whose data (the decoded values, added up) exceed 1 MiB. */
export const MAX_SECRET_DATA_BYTES = 1024 * 1024;

/** The Secret in words, as every message names it: "the Secret 'x' in the namespace 'y'". */
export function describeSecret(secret: SecretRef): string {
  return `the Secret '${secret.name}' in the namespace '${secret.namespace}'`;
}

const secretOp = (verb: string, object: string): Operation => ({ verb, resource: 'secrets', group: '', object });

/** The fields of a stored Secret that show it is the one written; its data are not read back. */
const secretAnswer = object({ apiVersion: literal('v1'), kind: literal('Secret'), metadata: object({ name: D.string, namespace: D.string, uid: D.string }) }, {}, 'a Secret');

/**
 * What a create did: `created` (`answerLost`: an earlier attempt may have created it and its answer was lost, so the
 * retry found it in place), or `already-there` (409 AlreadyExists: someone, most likely an earlier call for the same
 * alert, created it first).
 */
export type CreateSecretResult = { readonly outcome: 'created'; readonly answerLost: boolean } | { readonly outcome: 'already-there' };

export async function createSecret(kube: Kube, secret: SecretRef, body: SecretBody, deadline: number): Promise<CreateSecretResult> {
  const op = secretOp('create', describeSecret(secret));
  let answer: unknown;
  try {
    answer = await kube.request<unknown>({ method: 'POST', path: apiPath`/api/v1/namespaces/${secret.namespace}/secrets`, op, body }, deadline);
  } catch (error) {
    if (isApiStatus(error, 409) && error.reason === 'AlreadyExists') {
      return isApiStatusAfterPossiblyAppliedAttempt(error, 409) ? { outcome: 'created', answerLost: true } : { outcome: 'already-there' };
    }
    throw error;
  }
  checkWritten(secretAnswer, answer, op, 'that Secret', secret, 'created');
  return { outcome: 'created', answerLost: false };
}

/** What the API server sends for a metadata-only list (PartialObjectMetadataList): no data, whatever the Secrets hold. */
export const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

/** The metadata of a listed Secret, as read: checked field by field by whoever acts on it. */
export interface SecretMetadata {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly creationTimestamp?: string;
  readonly labels: Readonly<Record<string, string>>;
}

const metadataListAnswer = object(
  {
    apiVersion: literal('meta.k8s.io/v1'),
    kind: literal('PartialObjectMetadataList'),
    items: list(
      object({
        metadata: object(
          { name: D.string, namespace: D.string, uid: D.string },
          // Always there on a real API server; one without is never taken for old.
          { creationTimestamp: D.string, labels: stringMap },
        ),
      }),
    ),
  },
  {},
  'a list of object metadata (PartialObjectMetadataList)',
);

/**
 * The metadata of the first `limit` Secrets `selector` selects in `namespace` (a metadata-only list: whatever the
 * Secrets hold, the answer stays about a kilobyte a Secret).
 */
export async function listSecretMetadata(kube: Kube, namespace: NamespaceName, selector: LabelSelectorText, limit: number, deadline: number): Promise<readonly SecretMetadata[]> {
  const op = secretOp('list', `the Secrets labelled ${selector} in the namespace '${namespace}'`);
  const path = withQuery(apiPath`/api/v1/namespaces/${namespace}/secrets`, { labelSelector: selector, limit });
  const answer = await kube.request<unknown>({ method: 'GET', path, op, accept: METADATA_LIST_ACCEPT }, deadline);
  const list = decodedOrFail(metadataListAnswer, answer, (problems) => new KubeAnswerError(op, `the API server's answer is not a list of Secrets' metadata (${problems})`));
  return list.items.map(({ metadata: m }) => ({ ...m, labels: m.labels ?? {} }));
}

/** A DELETE answered with a Status, as the API server answers it for Secrets. */
const deletedAnswer = D.union(deletedStatus, secretAnswer);

/** What a DELETE did: `deleted`, `gone` (already), `replaced` (the name now holds another Secret: left alone). */
export type DeleteSecretResult = 'deleted' | 'gone' | 'replaced';

/** Deletes the Secret, but only the very one listed: the uid precondition makes the API server refuse (409) another. */
export async function deleteSecret(kube: Kube, secret: SecretRef, uid: string, deadline: number): Promise<DeleteSecretResult> {
  const op = secretOp('delete', describeSecret(secret));
  const body = { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid } };
  let answer: unknown;
  try {
    answer = await kube.request<unknown>({ method: 'DELETE', path: apiPath`/api/v1/namespaces/${secret.namespace}/secrets/${secret.name}`, op, body }, deadline);
  } catch (error) {
    if (isNotFound(error)) return 'gone';
    if (isApiStatus(error, 409) && error.reason === 'Conflict') return 'replaced';
    throw error;
  }
  decodedOrFail(deletedAnswer, answer, (problems) => new KubeAnswerError(op, `the API server's answer is not a deletion (${problems}): whether it was deleted is not known`));
  return 'deleted';
}
