import * as t from 'io-ts';
import { isLeft } from 'fp-ts/Either';
import { describeValue, reportErrors } from '../decode';
import { isApiStatus, KubeAnswerError, type KubeApiError, type Operation } from './errors';

/** Labels and annotations as the API server has them. */
export const stringMap = t.record(t.string, t.string, 'a map of strings');

/** An object by namespace and name. */
export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
}

/**
 * Decodes a 2xx answer before anything acts on it, and checks that it names the object asked for: a broken proxy in
 * front of the API server may answer 200 with an HTML page, another object or nothing. `what` names the object for
 * the message: `get the pod 'x' in the namespace 'y' failed: the API server's answer is not that pod (kind: …)`.
 * The codec checks the fields that are read; the value returned is the answer as sent, every other field kept.
 */
export function decodeAnswer<A extends { readonly metadata: ObjectRef }>(
  codec: t.Decoder<unknown, A>,
  answer: unknown,
  op: Operation,
  what: string,
  ref: ObjectRef,
): A {
  const fail = (problems: string) => new KubeAnswerError(op, `the API server's answer is not ${what} (${problems})`);
  if (answer === undefined) throw fail('the answer is empty');
  const result = codec.decode(answer);
  if (isLeft(result)) throw fail(reportErrors(result.left).join('; '));
  const { metadata } = result.right;
  const wrong = [
    ...(metadata.namespace === ref.namespace ? [] : [`metadata.namespace: expected ${describeValue(ref.namespace)}, got ${describeValue(metadata.namespace)}`]),
    ...(metadata.name === ref.name ? [] : [`metadata.name: expected ${describeValue(ref.name)}, got ${describeValue(metadata.name)}`]),
  ];
  if (wrong.length > 0) throw fail(wrong.join('; '));
  return result.right;
}

/**
 * Checks a 2xx answer to a write as decodeAnswer checks a read (and, given `uid`, that it is the object written to): a
 * proxy that answers writes with anything would otherwise have us report, and audit, a change that may never have
 * been made. Such an answer fails, saying so: `… the API server's answer is not that pod (…): whether it was deleted is not known`.
 */
export function checkWritten<A extends { readonly metadata: ObjectRef & { readonly uid: string } }>(
  codec: t.Decoder<unknown, A>,
  answer: unknown,
  op: Operation,
  what: string,
  ref: ObjectRef & { readonly uid?: string | undefined },
  change: string,
): void {
  try {
    const written = decodeAnswer(codec, answer, op, what, ref);
    if (ref.uid !== undefined && written.metadata.uid !== ref.uid) {
      throw new KubeAnswerError(op, `the API server's answer is not ${what} (metadata.uid: expected ${describeValue(ref.uid)}, got ${describeValue(written.metadata.uid)})`);
    }
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
