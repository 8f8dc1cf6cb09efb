import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  code?: string;
  err?: { type?: string; message?: string; code?: string; stack?: string };
  [key: string]: unknown;
}

/** The registry's pino lines, numbered from the moment this reader was attached. */
export class LogReader {
  private readonly lines: LogLine[] = [];
  private partial = '';
  private dropped = 0;

  constructor(stream: Readable, private readonly keep = 20_000) {
    stream.on('data', (chunk: Buffer) => {
      const text = this.partial + chunk.toString('utf8');
      const parts = text.split('\n');
      this.partial = parts.pop() ?? '';
      for (const part of parts) {
        try {
          this.lines.push(JSON.parse(part) as LogLine);
        } catch {
          this.lines.push({ level: 60, msg: part });
        }
      }
      if (this.lines.length > this.keep) {
        const excess = this.lines.length - this.keep;
        this.lines.splice(0, excess);
        this.dropped += excess;
      }
    });
  }

  /** A position to read from later. */
  mark(): number {
    return this.dropped + this.lines.length;
  }

  since(mark: number): LogLine[] {
    return this.lines.slice(Math.max(0, mark - this.dropped));
  }

  /**
   * The line that explains a server error answered after `mark`: the error handler's
   * `request failed` (level 50), or the info-level line it writes when it believes the
   * client has gone. Logs are written asynchronously, so this waits a little.
   */
  async serverErrorAfter(mark: number, waitMs = 1000): Promise<LogLine | undefined> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const found = this.since(mark).find((l) => l.err !== undefined && (l.level >= 50 || /aborted/.test(l.msg ?? '')));
      if (found || Date.now() > deadline) return found;
      await sleep(20);
    }
  }
}

/**
 * One line naming a server error's cause: the error's message with numbers and quoted
 * values generalised, its SQLSTATE, the registry function that raised it, and the
 * level it was logged at (issue 16 asks every 5xx to be logged as an error).
 */
export function causeOf(line: LogLine | undefined): string {
  if (!line) return 'no log line explains it';
  const err = line.err ?? {};
  const message = (err.message ?? line.msg ?? '').replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N').slice(0, 160);
  // The first registry function below the database drivers names the code path.
  const frame = (err.stack ?? '')
    .split('\n')
    .map((l) => /at (?:async )?([\w$.<>]+) \((?:file:\/\/)?[^)]*\/registry\/src\/([^):]+)/.exec(l))
    .find((m) => m !== null && !/^metadata\/(?:pglite|pglite-thread|pg|sql)\.[jt]s$/.test(m[2]!));
  const where = frame ? ` in ${frame[1]} (${frame[2]})` : '';
  const sqlstate = err.code ? ` [${err.code}]` : '';
  const level = line.level >= 50 ? '' : `; logged at level ${line.level} as "${line.msg}"`;
  return `${err.type ?? 'Error'}: ${message}${sqlstate}${where}${level}`;
}
