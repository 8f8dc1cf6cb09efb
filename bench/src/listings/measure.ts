import { performance } from 'node:perf_hooks';
import type { HttpClient } from '../oci/http.js';

/** One listing request and what a correct answer holds. */
export interface ListingRequest {
  path: string;
  /** `tags` or `repositories`. */
  field: 'tags' | 'repositories';
  /** How many names the page holds. */
  count: number;
  /** The first name of the page. */
  first: string;
}

/** GETs `request.path` once; checks status, size and first name; returns the latency in ms. */
export async function timeListing(http: HttpClient, request: ListingRequest): Promise<number> {
  const started = performance.now();
  const res = await http.send('GET', request.path);
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`GET ${request.path}: status ${res.status}: ${res.body.toString('utf8', 0, 200)}`);
  const names = (JSON.parse(res.body.toString('utf8')) as Record<string, unknown>)[request.field];
  if (!Array.isArray(names) || names.length !== request.count || names[0] !== request.first) {
    const got = Array.isArray(names) ? `${names.length} names from ${String(names[0])}` : 'no list';
    throw new Error(`GET ${request.path}: expected ${request.count} ${request.field} from ${request.first}, got ${got}`);
  }
  return ms;
}
