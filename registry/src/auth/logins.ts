import { setTimeout as sleep } from 'node:timers/promises';
import { ociError, RegistryError } from '../oci/errors.js';
import type { Authentication, IdentityService } from './identities.js';
import { isRefusal, type LoginThrottle } from './login-throttle.js';

/**
 * Every password login goes through here (Basic on /token and /api/v1, the password grant
 * of POST /token): throttled per client and per account before anything is verified,
 * answered with 429 TOOMANYREQUESTS and Retry-After when a limit is reached (or when the
 * hashing queue is full). A 429 is sent only after `refusalDelayMs`: without that, a client
 * looping on wrong passwords turns into a flood of cheap refusals (thousands a second from
 * 12 connections) that keeps the event loop from serving blobs; with it, each connection
 * gets at most one answer per delay, and a waiting answer costs a timer.
 */
export class LoginService {
  constructor(
    private readonly identities: IdentityService,
    private readonly throttle: LoginThrottle,
    private readonly options: { refusalDelayMs: number; onRefused?: (limit: 'client' | 'account') => void },
  ) {}

  async authenticate(username: string, secret: string, ip: string): Promise<Authentication> {
    try {
      return await this.attempt(username, secret, ip);
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'TOOMANYREQUESTS' && this.options.refusalDelayMs > 0) await sleep(this.options.refusalDelayMs);
      throw err;
    }
  }

  private async attempt(username: string, secret: string, ip: string): Promise<Authentication> {
    const attempt = this.throttle.admit(username, ip);
    if (isRefusal(attempt)) {
      this.options.onRefused?.(attempt.limit);
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
