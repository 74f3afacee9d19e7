import { existsSync, readdirSync } from 'fs';
import * as path from 'path';
import type { FunctionDescriptor } from '../lib/action';

/** The descriptor's file name says what a function is. */
const DESCRIPTOR_FILES = ['action.ts', 'router.ts'];

export interface DiscoveredFunction {
  readonly name: string;
  readonly dir: string;
  readonly entry: string;
  readonly descriptor: FunctionDescriptor;
}

/**
 * Every folder of `functions/` with an `index.ts` (the entry) and one descriptor (its default export), named for what
 * the function is: `action.ts` for an action, `router.ts` for the router that calls actions (the forwarder).
 * The folder name is the function's name; a descriptor that says otherwise is an error.
 */
export function discoverFunctions(root: string): DiscoveredFunction[] {
  const functionsDir = path.join(root, 'functions');
  const names = readdirSync(functionsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const found: DiscoveredFunction[] = [];
  for (const name of names) {
    const dir = path.join(functionsDir, name);
    const entry = path.join(dir, 'index.ts');
    const descriptorFiles = DESCRIPTOR_FILES.filter((file) => existsSync(path.join(dir, file)));
    if (!existsSync(entry) || descriptorFiles.length !== 1) {
      throw new Error(`functions/${name}/ must hold index.ts (the entry) and one descriptor: action.ts (an action) or router.ts (a router)`);
    }
    const descriptorFile = descriptorFiles[0];
    const actionFile = path.join(dir, descriptorFile);
    // require, not import(): both tsx and mocha's tsx/cjs hook load TypeScript through require
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const loaded = require(actionFile) as { default?: FunctionDescriptor };
    const descriptor = loaded.default;
    if (descriptor === undefined || typeof descriptor.name !== 'string') {
      throw new Error(`functions/${name}/${descriptorFile} must export its descriptor as the default export`);
    }
    if (descriptor.name !== name) {
      throw new Error(`functions/${name}/${descriptorFile} declares the name '${descriptor.name}': it must equal its folder name '${name}'`);
    }
    found.push({ name, dir, entry, descriptor });
  }
  return found;
}
