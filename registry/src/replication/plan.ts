import type { ArtifactEventRef, NewTask } from '../metadata/replication-executions.js';
import type { SourceEndpoint } from './endpoints.js';
import { artifactFacts, PolicyFilters } from './filters.js';
import { destinationRepository, FlatteningError } from './flatten.js';
import type { PolicySpec } from './policy.js';

/** Where a task's artifact goes; a source that cannot be flattened becomes a failed task that says why. */
function destination(spec: PolicySpec, repository: string): { dstRepository: string; failure?: string } {
  try {
    return { dstRepository: destinationRepository(repository, spec.destination.namespace, spec.destination.flattening) };
  } catch (err) {
    if (err instanceof FlatteningError) return { dstRepository: repository, failure: err.message };
    throw err;
  }
}

/**
 * Expands a policy's filters into tasks, one per artifact (repository and digest) with
 * the matching tags that name it. Only tagged artifacts are selected; their children
 * and referrers travel with them.
 */
export async function planTasks(spec: PolicySpec, source: SourceEndpoint, signal: AbortSignal): Promise<NewTask[]> {
  const filters = new PolicyFilters(spec.filters);
  const repositories = filters.literalNames() ?? (await source.repositories(signal)).filter(filters.name);
  const tasks: NewTask[] = [];
  for (const repository of repositories) {
    signal.throwIfAborted();
    const byDigest = new Map<string, string[]>();
    for (const tag of (await source.tags(repository, signal)).filter(filters.tag)) {
      const manifest = await source.manifest(repository, tag, signal);
      if (!manifest || !filters.artifact(artifactFacts(manifest.content, manifest.mediaType))) continue;
      byDigest.set(manifest.digest, [...(byDigest.get(manifest.digest) ?? []), tag]);
    }
    for (const [digest, tags] of byDigest) {
      tasks.push({ key: `copy:${repository}@${digest}`, operation: 'copy', srcRepository: repository, srcDigest: digest, tags, ...destination(spec, repository) });
    }
  }
  return tasks;
}

/** The task of an event-based execution: the pushed artifact, or the deletion; none when the filters exclude it. */
export async function planEvent(spec: PolicySpec, event: ArtifactEventRef, source: SourceEndpoint, signal: AbortSignal): Promise<NewTask[]> {
  const filters = new PolicyFilters(spec.filters);
  if (!filters.name(event.repository)) return [];
  if (event.tag !== undefined && !filters.tag(event.tag)) return [];
  const target = destination(spec, event.repository);
  if (event.type === 'deleted') {
    const reference = event.tag ?? event.digest;
    if (!reference) return [];
    return [{ key: `delete:${event.repository}:${reference}`, operation: 'delete', srcRepository: event.repository, ...(event.digest && { srcDigest: event.digest }), tags: event.tag ? [event.tag] : [], ...target }];
  }
  if (event.tag === undefined) return [];
  const manifest = await source.manifest(event.repository, event.tag, signal);
  // Moved or deleted since: a later event covers it.
  if (!manifest || (event.digest && manifest.digest !== event.digest)) return [];
  if (!filters.artifact(artifactFacts(manifest.content, manifest.mediaType))) return [];
  return [{ key: `copy:${event.repository}@${manifest.digest}`, operation: 'copy', srcRepository: event.repository, srcDigest: manifest.digest, tags: [event.tag], ...target }];
}
