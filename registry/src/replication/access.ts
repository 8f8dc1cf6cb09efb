import { isSystemAdmin, type Principal } from '../auth/policy.js';
import { ociError } from '../oci/errors.js';
import { notSignedIn } from '../services/access.js';

/** Remote registries, policies and executions are for system administrators. */
export function requireReplicationAdmin(principal: Principal): void {
  if (isSystemAdmin(principal)) return;
  if (principal.kind === 'anonymous') throw notSignedIn();
  throw ociError('DENIED', undefined, { message: `managing replication needs a system administrator, not ${principal.name}` });
}
