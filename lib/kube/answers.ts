import { isLeft } from 'fp-ts/Either';
import * as D from 'io-ts/Decoder';
import { describeValue, literal, object, record, refined, reportErrors } from '../decode';
import type { Kube, KubeRequest } from './client';
import { isApiStatus, KubeAnswerError, type KubeApiError, type Operation } from './errors';

/** Labels and annotations as the API server has them. */
export const stringMap = record(D.string, 'a map of strings');

/** A timestamp as the API server writes them (RFC 3339): delete-pod quotes one, delete-object compares one. */
export const timeAnswer = refined(
  D.string,
  (s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(s),
  'a time (RFC 3339, such as 2026-11-26T10:00:01Z)',
);

/** The API server's answer to a DELETE that removed the object at once, for kinds that do not send the object back. */
export const deletedStatus = object({ kind: literal('Status'), status: literal('Success') });

/** Whether an answer is that Status. */
export function isDeletedStatus(answer: unknown): boolean {
  return !isLeft(deletedStatus.decode(answer));
}

/** A uid as the API server makes them (a UUID), so that one quoted in a message or an Event is short and inert. */
export const uidAnswer = refined(D.string, (s) => /^[A-Za-z0-9-]{1,128}$/.test(s), "a uid (letters, digits and '-', at most 128)");

/** An object by name, and namespace: none for a cluster-wide object (a Node, a ClusterRole), whose answer names none. */
export interface ObjectRef {
  readonly namespace?: string;
  readonly name: string;
}

/**
 * Decodes a 2xx answer before anything acts on it, and checks that it names the object asked for: a broken proxy in
 * front of the API server may answer 200 with an HTML page, another object or nothing. `what` names the object for
 * the message: `get the pod 'x' in the namespace 'y' failed: the API server's answer is not that pod (kind: …)`.
 * The codec checks the fields that are read; the value returned is the answer as sent, every other field kept.
 */
export function decodeAnswer<A extends { readonly metadata: ObjectRef }>(
  codec: D.Decoder<unknown, A>,
  answer: unknown,
  op: Operation,
  what: string,
  ref: ObjectRef,
): A {
  const fail = (problems: string) => new KubeAnswerError(op, `the API server's answer is not ${what} (${problems})`);
  const decoded = decodedOrFail(codec, answer, fail);
  const { metadata } = decoded;
  const wrong = [...mismatch('metadata.namespace', ref.namespace, metadata.namespace), ...mismatch('metadata.name', ref.name, metadata.name)];
  if (wrong.length > 0) throw fail(wrong.join('; '));
  return decoded;
}

/** An answer decoded by `codec`, or the error `fail` makes of what is wrong with it (empty, or the fields that are not as the codec wants). */
export function decodedOrFail<A>(codec: D.Decoder<unknown, A>, answer: unknown, fail: (problems: string) => Error): A {
  if (answer === undefined) throw fail('the answer is empty');
  const result = codec.decode(answer);
  if (isLeft(result)) throw fail(reportErrors(result.left).join('; '));
  return result.right;
}

/** `[metadata.name: expected "x", got "y"]` when a field of the answer is not what was sent or asked for; `[]` when it is, or nothing was expected. */
export function mismatch(field: string, expected: string | undefined, got: string | undefined): string[] {
  return expected === undefined || expected === got ? [] : [`${field}: expected ${describeValue(expected)}, got ${describeValue(got)}`];
}

/**
 * Reads an object: `undefined` when the API server says there is none (404 NotFound), else the answer, decoded and
 * checked to be that very object (decodeAnswer).
 */
export async function readObject<A extends { readonly metadata: ObjectRef }>(
  kube: Kube,
  request: KubeRequest,
  codec: D.Decoder<unknown, A>,
  what: string,
  ref: ObjectRef,
  deadline: number,
): Promise<A | undefined> {
  let answer: unknown;
  try {
    answer = await kube.request<unknown>(request, deadline);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  return decodeAnswer(codec, answer, request.op, what, ref);
}

/**
 * Checks a 2xx answer to a write as decodeAnswer checks a read (and, given `uid`, that it is the object written to): a
 * proxy that answers writes with anything would otherwise have us report, and audit, a change that may never have
 * been made. Such an answer fails, saying so: `… the API server's answer is not that pod (…): whether it was deleted is not known`.
 */
export function checkWritten<A extends { readonly metadata: ObjectRef & { readonly uid: string } }>(
  codec: D.Decoder<unknown, A>,
  answer: unknown,
  op: Operation,
  what: string,
  ref: ObjectRef & { readonly uid?: string | undefined },
  change: string,
): void {
  try {
    const written = decodeAnswer(codec, answer, op, what, ref);
    const wrongUid = mismatch('metadata.uid', ref.uid, written.metadata.uid);
    if (wrongUid.length > 0) throw new KubeAnswerError(op, `the API server's answer is not ${what} (${wrongUid.join('; ')})`);
  } catch (error) {
    if (error instanceof KubeAnswerError) throw new KubeAnswerError(op, `${error.problem}: whether it was ${change} is not known`);
    throw error;
  }
}

/**
 * The API server's own "not found": a 404 whose Status says NotFound. A 404 without it (a proxy's error page, a wrong
 * path) proves nothing about the object and stays a failure.
 */
export function isNotFound(error: unknown): error is KubeApiError {
  return isApiStatus(error, 404) && error.reason === 'NotFound';
}
