/** One server under test, started by the harness on loopback. */
export interface Target {
  /** Stable key: `distribution`, `zot`, `wharf-pglite`, `wharf-postgres`, `nginx`. */
  readonly id: string;
  /** Column heading, e.g. "distribution". */
  readonly label: string;
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** The process whose memory is reported (nginx: none). */
  readonly pid: number | undefined;
  /**
   * A server the target needs beside it (Wharf's PostgreSQL): its memory is read after
   * each workload and reported on a row of its own, not added to the target's, whose
   * figure stays the one process the ceiling is about.
   */
  readonly companion?: { readonly label: string; readonly pid: number };
  /** Registries speak the distribution API; the file server only serves the pull blob. */
  readonly kind: 'registry' | 'file';
  /** For the file server: the URL path of the pull blob. */
  readonly blobPath?: string;
  stop(): Promise<void>;
}

/** Where a target may put its config, data and log. */
export interface TargetContext {
  /** A directory of its own, created and removed by the harness. */
  dir: string;
}
