import { projectOf } from '../auth/scopes.js';
import type { Metadata } from '../metadata/index.js';
import { ociError } from '../oci/errors.js';
import { EMPTY_IMMUTABILITY, immutableBy, immutableTagError, type ImmutabilityPolicy } from './immutability.js';

/**
 * The service-layer checks of tag immutability and signed-artifact protection, so that
 * every path that moves or deletes (the /v2 API, the management API, retention) is held
 * by the same rules.
 */
export class LifecycleGuard {
  constructor(private readonly meta: Metadata) {}

  async policy(repository: string): Promise<ImmutabilityPolicy> {
    return (await this.meta.lifecycle.immutabilityPolicy(projectOf(repository))) ?? EMPTY_IMMUTABILITY;
  }

  /** The label of the rule that makes `tag` immutable, if one does. */
  async immutableRule(repository: string, tag: string): Promise<string | undefined> {
    return immutableBy(await this.policy(repository), repository, tag);
  }

  /** Refuses deleting `tag` when it is immutable. */
  async checkTagDelete(repository: string, tag: string): Promise<void> {
    const rule = await this.immutableRule(repository, tag);
    if (rule) throw immutableTagError(repository, tag, rule, 'deleted');
  }

  /**
   * Refuses deleting the manifest `digest` (with `doomed`: it and the referrers deleted
   * with it) when one of their tags is immutable, or when it is signed and the project protects signed artifacts.
   */
  async checkManifestDelete(repository: string, digest: string, doomed: string[]): Promise<void> {
    const policy = await this.policy(repository);
    if (policy.rules.length > 0) {
      for (const { tag } of await this.meta.lifecycle.tagsOf(repository, doomed)) {
        const rule = immutableBy(policy, repository, tag);
        if (rule) throw immutableTagError(repository, tag, rule, 'deleted');
      }
    }
    if (policy.protectSignedArtifacts && (await this.meta.lifecycle.signed(repository, [digest])).has(digest)) {
      throw ociError('DENIED', { repository, digest, protection: 'protectSignedArtifacts' }, { message: `${repository}@${digest} is signed and project "${projectOf(repository)}" protects signed artifacts from deletion` });
    }
  }
}
