/**
 * manifests/standalone/ for a Kubernetes 1.20 cluster, as the build writes it there with
 * `standalone.podDisruptionBudgetApiVersion: policy/v1beta1` (1.20 has no policy/v1): a copy in a folder of the
 * caller's, identical but for the PodDisruptionBudgets' apiVersion (test/unit/standalone.test.ts proves the two equal).
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'fs';
import * as path from 'path';

const STANDALONE = path.resolve(__dirname, '..', '..', 'manifests', 'standalone');
const V1_BUDGET = /^apiVersion: policy\/v1\nkind: PodDisruptionBudget$/gm;

/** The text of one standalone file with its budgets in policy/v1beta1. */
export function withBetaBudgets(text: string): string {
  return text.replace(V1_BUDGET, 'apiVersion: policy/v1beta1\nkind: PodDisruptionBudget');
}

/** Writes the copy into `<dir>/standalone/` and returns that folder, for `kubectl apply -k`. */
export function standaloneFor120(dir: string, from: string = STANDALONE): string {
  const out = path.join(dir, 'standalone');
  mkdirSync(out, { recursive: true });
  for (const file of readdirSync(from)) {
    if (file.endsWith('.yaml') && file !== 'kustomization.yaml') writeFileSync(path.join(out, file), withBetaBudgets(readFileSync(path.join(from, file), 'utf8')));
    else copyFileSync(path.join(from, file), path.join(out, file));
  }
  return out;
}
