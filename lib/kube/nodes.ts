import * as t from 'io-ts';
import type { V1Node } from '@kubernetes/client-node';
import { stringMap } from './answers';
import type { Kube } from './client';
import type { Operation } from './errors';
import { readNamed } from './objects';
import { apiPath } from './refs';
import type { NodeName } from '../names';

/** A node by name; nodes have no namespace. */
export interface NodeRef {
  readonly name: NodeName;
}

/** The node in words, as every message names it: "the node 'worker-1'". */
export function describeNode(node: NodeRef): string {
  return `the node '${node.name}'`;
}

const nodePath = (node: NodeRef) => apiPath`/api/v1/nodes/${node.name}`;
const nodeOp = (verb: string, node: NodeRef): Operation => ({ verb, resource: 'nodes', group: '', object: describeNode(node) });

/** The fields of a Node that the guards and actions read, checked before any of them is believed. */
const nodeAnswer = t.type(
  {
    apiVersion: t.literal('v1'),
    kind: t.literal('Node'),
    metadata: t.intersection([
      t.type({ name: t.string, uid: t.refinement(t.string, (s) => /^[A-Za-z0-9-]{1,128}$/.test(s), "a uid (letters, digits and '-', at most 128)") }),
      t.partial({ resourceVersion: t.string, labels: stringMap, annotations: stringMap }),
    ]),
    spec: t.partial({ unschedulable: t.boolean }),
  },
  'a Node',
);

/**
 * The node as the API server has it, or `undefined` when the API server says it does not exist (404 NotFound). Any
 * other answer, a 2xx that is not this very node included, throws.
 */
export function getNode(kube: Kube, node: NodeRef, deadline: number): Promise<V1Node | undefined> {
  return readNamed(kube, nodeOp('get', node), nodePath(node), nodeAnswer, 'that node', node, deadline);
}
