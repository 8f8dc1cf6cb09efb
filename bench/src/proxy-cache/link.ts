/** How the upstream is reached: its bandwidth per connection and its latency per request. */
export interface LinkShape {
  mibPerSecond?: number;
  /** Added before each request reaches the upstream: the round trip a request to a distant registry costs. */
  rttMs?: number;
}

/** "a 50 MiB/s link with 20 ms per request" */
export function describeLink(link: LinkShape): string {
  const parts = [link.mibPerSecond !== undefined ? `a ${link.mibPerSecond} MiB/s link` : 'a link of unlimited rate'];
  if (link.rttMs !== undefined) parts.push(`${link.rttMs} ms per request`);
  return parts.join(' with ');
}

/** The link to shape from --link-mibps and --link-rtt-ms; undefined when neither is given (loopback). */
export function parseLinkShape(mibps: string | undefined, rttMs: string | undefined): LinkShape | undefined {
  if (mibps === undefined && rttMs === undefined) return undefined;
  if (mibps !== undefined && !(Number(mibps) > 0)) throw new Error(`--link-mibps must be a positive number, not ${mibps}`);
  if (rttMs !== undefined && !(Number(rttMs) > 0 && Number(rttMs) <= 10_000)) throw new Error(`--link-rtt-ms must be a number of milliseconds in (0, 10000], not ${rttMs}`);
  return { ...(mibps !== undefined && { mibPerSecond: Number(mibps) }), ...(rttMs !== undefined && { rttMs: Number(rttMs) }) };
}

