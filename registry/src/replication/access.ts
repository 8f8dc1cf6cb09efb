import { isSystemAdmin, type Principal } from '../auth/policy.js';
import { ociError } from '../oci/errors.js';

/** Remote registries, policies and executions are for system administrators. */
export function requireReplicationAdmin(principal: Principal): void {
  if (isSystemAdmin(principal)) return;
  if (principal.kind === 'anonymous') throw ociError('UNAUTHORIZED', undefined, { message: 'sign in as a system administrator to manage replication' });
  throw ociError('DENIED', undefined, { message: `managing replication needs a system administrator, not ${principal.name}` });
}
