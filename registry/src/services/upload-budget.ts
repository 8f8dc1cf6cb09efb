import { ociError, type RegistryError } from '../oci/errors.js';
import type { QuotaRoom } from './quota.js';

/**
 * How many more bytes one request may add to an upload, and the refusal past them: the
 * largest blob the registry accepts, what the project's quota has left, and the length
 * the request declared (Content-Range or Content-Length), whichever is smallest. It is
 * computed once per request, so that streaming costs one comparison per chunk.
 *
 * A refusal for size or quota is final: the blob can never fit, so the caller discards
 * the upload. A body longer than it declared is the client's mistake for this request
 * only; the upload keeps what it held before.
 */
export class UploadBudget {
  /** Bytes this request may add. */
  readonly bytes: number;
  private readonly final = new WeakSet<RegistryError>();

  constructor(
    /** Bytes the upload holds before this request. */
    private readonly held: number,
    private readonly maxSize: number,
    private readonly room: QuotaRoom | undefined,
    private readonly declared: number | undefined,
  ) {
    this.bytes = Math.max(0, Math.min(maxSize - held, room ? room.left - held : Infinity, declared ?? Infinity));
  }

  /** Refuses a declared length that cannot fit, before anything is read. */
  checkDeclared(): void {
    if (this.declared === undefined) return;
    const total = this.held + this.declared;
    if (total > this.maxSize || (this.room && total > this.room.left)) throw this.refusal(total);
  }

  /** The refusal for a request that sent `received` bytes, more than `bytes`. */
  exceeded(received: number): RegistryError {
    if (this.declared !== undefined && received > this.declared) {
      return ociError('SIZE_INVALID', { expected: this.declared, received }, { message: `received more than the ${this.declared} bytes the request declared` });
    }
    return this.refusal(this.held + received);
  }

  /** Whether `err` is a refusal of this budget that ends the upload. */
  ends(err: unknown): boolean {
    return this.final.has(err as RegistryError);
  }

  /** For an upload of `total` bytes past a bound: the quota's refusal when it is the tighter bound, else the size cap's. */
  private refusal(total: number): RegistryError {
    if (this.room && total > this.room.left && this.room.left <= this.maxSize) return this.finalRefusal(this.room.refusal(total));
    return this.finalRefusal(
      ociError('SIZE_TOO_LARGE', { maxSize: this.maxSize }, { message: `the upload exceeds the largest blob this registry accepts (${this.maxSize} bytes)` }),
    );
  }

  private finalRefusal(err: RegistryError): RegistryError {
    this.final.add(err);
    return err;
  }
}
