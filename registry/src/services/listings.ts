import { ociError } from '../oci/errors.js';
import type { Metadata } from '../metadata/index.js';
import type { Referrer } from '../metadata/manifests.js';

/** Upper bound on one page of tags or repositories, whatever `n` asks for. */
export const MAX_PAGE_SIZE = 10_000;

export interface PageRequest {
  n?: number;
  last?: string;
}

export interface PageResult {
  items: string[];
  /** Present when more items follow; the `last` value for the next page. */
  next?: string;
}

/** Parses `n` and `last` query parameters; `n` must be a non-negative integer. */
export function parsePage(query: { n?: string; last?: string }): PageRequest {
  const page: PageRequest = {};
  if (query.n !== undefined && query.n !== '') {
    if (!/^\d{1,9}$/.test(query.n)) throw ociError('PAGINATION_INVALID', { n: query.n }, { message: 'n must be a non-negative integer' });
    page.n = Number(query.n);
  }
  if (query.last !== undefined && query.last !== '') page.last = query.last;
  return page;
}

async function paginate(page: PageRequest, fetch: (p: { n: number; last?: string }) => Promise<string[]>): Promise<PageResult> {
  const want = Math.min(page.n ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE);
  if (want === 0) return { items: [] };
  const rows = await fetch({ n: want + 1, ...(page.last !== undefined && { last: page.last }) });
  if (rows.length <= want) return { items: rows };
  const items = rows.slice(0, want);
  return { items, next: items[items.length - 1]! };
}

export class ListingService {
  constructor(private readonly meta: Metadata) {}

  async tags(repository: string, page: PageRequest): Promise<PageResult> {
    const result = await paginate(page, (p) => this.meta.manifests.listTags(repository, p));
    if (result.items.length === 0 && !(await this.meta.repositories.exists(repository))) throw ociError('NAME_UNKNOWN', { name: repository });
    return result;
  }

  /** Repositories, restricted to `projects` when given (what the caller may see). */
  catalog(page: PageRequest, projects?: Set<string>): Promise<PageResult> {
    return paginate(page, (p) => this.meta.repositories.list({ ...p, ...(projects && { projects: [...projects] }) }));
  }

  /** Manifests whose subject is `subject`; an unknown subject (or repository) yields an empty list. */
  referrers(repository: string, subject: string, artifactType?: string): Promise<Referrer[]> {
    return this.meta.manifests.referrers(repository, subject, artifactType);
  }
}
