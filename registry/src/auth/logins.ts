import { ociError } from '../oci/errors.js';
import type { Authentication, IdentityService } from './identities.js';
import { isRefusal, type LoginThrottle } from './login-throttle.js';

/**
 * Every password login goes through here (Basic on /token and /api/v1, the password grant
 * of POST /token): throttled per client and per account before anything is verified,
 * answered with 429 TOOMANYREQUESTS and Retry-After when a limit is reached.
 */
export class LoginService {
  constructor(
    private readonly identities: IdentityService,
    private readonly throttle: LoginThrottle,
    private readonly onRefused: (limit: 'client' | 'account') => void = () => {},
  ) {}

  async authenticate(username: string, secret: string, ip: string): Promise<Authentication> {
    const attempt = this.throttle.admit(username, ip);
    if (isRefusal(attempt)) {
      this.onRefused(attempt.limit);
      const seconds = attempt.retryAfterSeconds;
      const from = attempt.limit === 'client' ? 'from this address' : 'for this account';
      throw ociError('TOOMANYREQUESTS', { limit: attempt.limit, retryAfter: seconds }, {
        message: `too many failed logins ${from}; retry in ${seconds} second${seconds === 1 ? '' : 's'}`,
        headers: { 'Retry-After': String(seconds) },
      });
    }
    let result: Authentication;
    try {
      result = await this.identities.authenticate(username, secret);
    } catch (err) {
      attempt.abandoned();
      throw err;
    }
    if (result.ok) attempt.succeeded();
    else attempt.failed();
    return result;
  }
}
