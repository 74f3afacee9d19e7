/**
 * What an edit of a function's config file does, by how the function reads the file: the one text that the
 * generated ConfigMap's annotation, the forwarder's default routing table and docs/functions.md say, held against
 * the behaviour (lib/router/followed-file.ts) by test/unit/config-files.test.ts.
 */
import type { ConfigFile } from './action';
import { RECHECK_MS } from './router/followed-file';

const recheck = RECHECK_MS === 1000 ? 'a second' : `${RECHECK_MS / 1000} seconds`;

export const AFTER_EDIT: Readonly<Record<ConfigFile['read'], string>> = {
  'at-start': 'read when the pod starts: restart the pod after an edit',
  followed:
    'read at start and followed: an edit of the ConfigMap takes effect without a restart, once the kubelet has updated the ' +
    `mounted file (about a minute) and the function has looked again (at most ${recheck} later); while the file is unusable, ` +
    'every call answers 500 with the reason',
};
