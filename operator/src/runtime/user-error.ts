/**
 * An error only the user can fix (a missing Secret, a name another object owns): the object is
 * Stalled with `reason` and `message`, and looked at again later instead of retried with backoff.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}
