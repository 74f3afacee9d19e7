import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import * as path from 'path';

/**
 * A folder laid out as the kubelet mounts a ConfigMap: `<dir>/<file>` links to `..data/<file>`, and `..data` links to
 * a folder per version. An edit of the ConfigMap reaches the pod as `publish` does it: a new version folder, `..data`
 * swapped to it atomically (a new link renamed over the old one), the old folder removed.
 */
export class ConfigMapVolume {
  private version = 0;

  private constructor(
    readonly dir: string,
    private readonly file: string,
  ) {}

  /** Creates the folder `dir` holding `file` with `content`, mounted as the kubelet mounts it. */
  static create(dir: string, file: string, content: string): ConfigMapVolume {
    mkdirSync(dir);
    const volume = new ConfigMapVolume(dir, file);
    volume.publish(content);
    symlinkSync(path.join('..data', file), path.join(dir, file));
    return volume;
  }

  /** The path a container reads: the link that always points into the current version. */
  get path(): string {
    return path.join(this.dir, this.file);
  }

  /** Brings a new content into the mount, as the kubelet does after an edit of the ConfigMap. */
  publish(content: string): void {
    const previous = this.version === 0 ? undefined : `..${this.version}`;
    const folder = `..${++this.version}`;
    mkdirSync(path.join(this.dir, folder));
    writeFileSync(path.join(this.dir, folder, this.file), content);
    symlinkSync(folder, path.join(this.dir, '..data_tmp'));
    renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
    if (previous !== undefined) rmSync(path.join(this.dir, previous), { recursive: true });
  }
}
