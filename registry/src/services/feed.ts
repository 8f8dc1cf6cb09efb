import { finished, type Readable, type Writable } from 'node:stream';

/**
 * Pipes a request body into `sink` and settles once the sink has taken all of it.
 *
 * A body that fails (the client went away) fails the sink, so storage stops writing.
 * When the sink fails first (a limit was crossed, storage failed) or `stop` aborts
 * (the body arrives too slowly), the body is left paused instead of destroyed: the
 * connection stays up so that the caller can still answer, and the HTTP layer closes
 * it after the answer, since the body was not read to its end. `stream.pipeline`
 * would destroy the body, and with it the connection, before any answer.
 */
export function feed(source: Readable, sink: Writable, stop?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      stopWatchingSource();
      stop?.removeEventListener('abort', onStop);
      // The 'error' listener stays: destroying the sink below must not go unheard.
      sink.off('finish', onFinish);
      if (err === undefined) {
        resolve();
        return;
      }
      source.unpipe(sink);
      source.pause();
      sink.destroy(err as Error);
      reject(err);
    };
    const onStop = () => settle(stop!.reason);
    const onFinish = () => settle();
    const stopWatchingSource = finished(source, { writable: false }, (err) => {
      if (err) settle(err);
    });
    sink.on('error', settle);
    sink.once('finish', onFinish);
    if (stop?.aborted) {
      settle(stop.reason);
      return;
    }
    stop?.addEventListener('abort', onStop, { once: true });
    source.pipe(sink);
  });
}
