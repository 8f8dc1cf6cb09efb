import { Agent, request } from 'undici';
import { basic } from './auth.js';

export interface LoginAnswer {
  status: number;
  retryAfter: string | undefined;
  body: any;
}

/**
 * Sends logins from one loopback address (127.0.0.0/8 is all local on Linux), so that a
 * test can play several clients whose addresses the registry tells apart.
 */
export class ClientAt {
  private readonly agent: Agent;

  constructor(
    readonly base: string,
    readonly address: string,
  ) {
    this.agent = new Agent({ localAddress: address });
  }

  private async send(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string): Promise<LoginAnswer> {
    const res = await request(`${this.base}${path}`, { method, headers, dispatcher: this.agent, ...(body !== undefined && { body }) });
    const text = await res.body.text();
    const retryAfter = res.headers['retry-after'];
    return { status: res.statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, body: text ? JSON.parse(text) : undefined };
  }

  /** GET /token with Basic credentials. */
  token(username: string, password: string, scope = 'repository:any/thing:pull'): Promise<LoginAnswer> {
    return this.send('GET', `/token?service=wharf-test&scope=${encodeURIComponent(scope)}`, { authorization: basic(username, password) });
  }

  /** POST /token, grant_type=password. */
  passwordGrant(username: string, password: string): Promise<LoginAnswer> {
    const form = new URLSearchParams({ grant_type: 'password', service: 'wharf-test', client_id: 'test', username, password });
    return this.send('POST', '/token', { 'content-type': 'application/x-www-form-urlencoded' }, form.toString());
  }

  /** A management API call with Basic credentials. */
  api(username: string, password: string, path = '/api/v1/projects'): Promise<LoginAnswer> {
    return this.send('GET', path, { authorization: basic(username, password) });
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** The value of one sample in the registry's /metrics; fails when the metric is missing. */
export async function metricValue(base: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  if (!line) throw new Error(`metric ${name}${labels ? `{${labels}}` : ''} not found in /metrics`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}
