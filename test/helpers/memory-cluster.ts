import { podObject, status } from './fake-cluster';

/** A reply as nock takes it from a reply function: status, body, headers. */
export type Reply = [number, unknown] | [number, unknown, Record<string, string>];

type KubeObject = { metadata?: { name?: string; generateName?: string; uid?: string; resourceVersion?: string } } & Record<string, unknown>;

/** RFC 7386 JSON merge patch: objects merge, `null` removes a key, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * Just enough of an API server, in memory, for the actions' calls and their races: objects by path, 404 for what is
 * absent, 409 for a create of an existing name, a stale resourceVersion or a delete's uid precondition that no longer
 * holds, 422 for a patch naming another uid.
 * Every request is answered at once and in order, so ten concurrent alerts interleave as they would on a real one.
 */
export class MemoryCluster {
  readonly objects = new Map<string, KubeObject>();
  private version = 100;
  private generated = 0;

  /** A running pod owned by a ReplicaSet, as the actions expect to find one. */
  addPod(namespace: string, name: string): this {
    this.objects.set(`/api/v1/namespaces/${namespace}/pods/${name}`, podObject(namespace, name, { ownerKind: 'ReplicaSet' }));
    return this;
  }

  /** Objects under a path prefix, e.g. the events of a namespace. */
  under(prefix: string): KubeObject[] {
    return [...this.objects].filter(([p]) => p.startsWith(prefix)).map(([, o]) => o);
  }

  answer(method: string, path: string, body: unknown): Reply {
    const existing = this.objects.get(path);
    const name = path.slice(path.lastIndexOf('/') + 1);
    const notFound = (): Reply => [404, status(404, 'NotFound', `${path} not found`)];
    const conflict = (message: string): Reply => [409, status(409, 'Conflict', message)];
    switch (method) {
      case 'GET':
        return existing === undefined ? notFound() : [200, existing];
      case 'POST': {
        const object = { ...(body as KubeObject) };
        const metadata = { ...object.metadata };
        const objectName = metadata.name ?? `${metadata.generateName ?? 'object-'}${(++this.generated).toString(36)}`;
        const objectPath = `${path}/${objectName}`;
        if (this.objects.has(objectPath)) return [409, status(409, 'AlreadyExists', `${objectPath} already exists`)];
        object.metadata = { ...metadata, name: objectName, uid: `uid-${objectName}`, resourceVersion: String(++this.version) };
        this.objects.set(objectPath, object);
        return [201, object];
      }
      case 'PUT': {
        if (existing === undefined) return notFound();
        const object = body as KubeObject;
        const wanted = object.metadata?.resourceVersion;
        if (wanted !== undefined && wanted !== existing.metadata?.resourceVersion) return conflict('the object has been modified');
        const stored = { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.version) } };
        this.objects.set(path, stored);
        return [200, stored];
      }
      case 'PATCH': {
        if (existing === undefined) return notFound();
        const uid = (body as KubeObject).metadata?.uid;
        // A patch that names another uid is refused as invalid (422), as a real API server does; a delete's uid precondition gives 409.
        if (uid !== undefined && uid !== existing.metadata?.uid) return [422, status(422, 'Invalid', `metadata.uid: Invalid value: "${uid}": field is immutable`)];
        const patched = mergePatch(existing, body) as KubeObject;
        patched.metadata = { ...patched.metadata, resourceVersion: String(++this.version) };
        this.objects.set(path, patched);
        return [200, patched];
      }
      case 'DELETE': {
        if (existing === undefined) return notFound();
        const uid = (body as { preconditions?: { uid?: string } } | undefined)?.preconditions?.uid;
        if (uid !== undefined && uid !== existing.metadata?.uid) return conflict(`Precondition failed: UID in precondition: ${uid}`);
        this.objects.delete(path);
        return [200, existing];
      }
      default:
        return [405, status(405, 'MethodNotAllowed', `${method} is not allowed on ${name}`)];
    }
  }
}
