import { type BodySpec, type FuzzCase, Ref, RawNumber, routeLabel } from './case.js';
import { type Exchange, RawClient, type WireRequest } from './exchange.js';
import { checkExchange, Invariant, type Violation } from './invariants.js';
import { causeOf } from './logs.js';
import { describeExchange } from './report.js';
import type { RouteSpec } from './routes.js';
import { encodeUrlPart, headerValue, wtf8 } from './strings.js';
import { SERVICE, type FuzzTarget } from './target.js';

/** One violation with the exchange that showed it and, for a 5xx, the cause the server logged. */
export interface Finding extends Violation {
  exchange: Exchange;
  /** The case whose exchange it is (the token request of a scoped case is a case of its own). */
  case: FuzzCase;
  cause?: string;
  /** How to show the Authorization header, when it holds a token that only this run had. */
  authorizationNote?: string;
  /** For a state change: every request of the batch it happened in. */
  batch?: { exchange: Exchange; authorizationNote?: string }[];
}

export interface Outcome {
  findings: Finding[];
  /** The case's own request and answer (a scoped case's token request is among the findings' exchanges only). */
  exchange: Exchange;
  authorizationNote?: string;
}

/** FUZZ_DEBUG=<part of a route label> prints every exchange on matching routes. */
const DEBUG = process.env.FUZZ_DEBUG;

/** Serialises generated JSON: raw numbers as written, references resolved, strings as JSON.stringify writes them. */
function jsonText(value: unknown, resolve: (r: Ref) => string): string {
  if (value instanceof RawNumber) return value.text;
  if (value instanceof Ref) return JSON.stringify(resolve(value));
  if (Array.isArray(value)) return `[${value.map((v) => jsonText(v, resolve)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .map((k) => `${JSON.stringify(k)}:${jsonText((value as Record<string, unknown>)[k], resolve)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function renderBody(body: BodySpec, resolve: (r: Ref) => string): { bytes: Buffer; contentType: string } {
  switch (body.kind) {
    case 'bytes':
      return { bytes: Buffer.from(body.bytes), contentType: body.contentType ?? 'application/octet-stream' };
    case 'text':
      return { bytes: wtf8(body.text), contentType: 'application/json' };
    case 'json': {
      const mediaType = (body.value as { mediaType?: unknown } | null)?.mediaType;
      return { bytes: wtf8(jsonText(body.value, resolve)), contentType: typeof mediaType === 'string' ? headerValue(mediaType) : 'application/json' };
    }
    case 'form':
      return {
        bytes: Buffer.from(body.fields.map(([k, v]) => `${encodeUrlPart(k, 'component')}=${encodeUrlPart(v instanceof Ref ? resolve(v) : v, 'component')}`).join('&')),
        contentType: 'application/x-www-form-urlencoded',
      };
  }
}

/** Sends generated cases to the target and checks every answer. */
export class CaseRunner {
  private sinceHealthCheck = 0;
  /** Requests sent per documented route and method, with the statuses they got. */
  readonly coverage = new Map<string, Map<number | string, number>>();

  constructor(
    private readonly target: FuzzTarget,
    private readonly client: RawClient,
    private readonly tokenRoute: RouteSpec,
  ) {}

  private resolve = (r: Ref): string => {
    if (r.ref.startsWith('forged: ')) return this.target.forgeries.get(r.ref.slice('forged: '.length)) ?? '';
    const principal = /^refresh token of (\w+)$/.exec(r.ref)?.[1];
    if (principal) return this.target.refreshToken(principal as 'admin');
    throw new Error(`unknown reference ${r.ref}`);
  };

  private scopesFor(c: FuzzCase): string[] {
    if (c.route?.action === 'catalog') return ['registry:catalog:*'];
    if (c.scopeName === undefined) return [];
    return [`repository:${c.scopeName}:pull,push,delete`, ...(c.mountFrom !== undefined ? [`repository:${c.mountFrom}:pull`] : [])];
  }

  /** The token request a scoped case makes first, itself a case held to every invariant. */
  private tokenCase(c: FuzzCase & { credentials: { kind: 'token' } }): FuzzCase {
    const scopes = this.scopesFor(c).map((s) => `scope=${encodeUrlPart(s, 'component')}`);
    const principal = c.credentials.principal;
    if (principal === 'anonymous') {
      return { route: { ...this.tokenRoute, method: 'GET' }, method: 'GET', path: `/token?service=${SERVICE}${scopes.map((s) => `&${s}`).join('')}`, headers: [], credentials: { kind: 'none' } };
    }
    const form = [`grant_type=refresh_token`, `service=${SERVICE}`, `refresh_token=${this.target.refreshToken(principal)}`, ...scopes].join('&');
    return { route: this.tokenRoute, method: 'POST', path: '/token', headers: [], body: { kind: 'text', text: form }, contentType: 'application/x-www-form-urlencoded', credentials: { kind: 'none' } };
  }

  private async authorization(c: FuzzCase, findings: Finding[]): Promise<{ value?: string; note?: string }> {
    const cred = c.credentials;
    switch (cred.kind) {
      case 'none':
        return {};
      case 'token': {
        if (!cred.scoped) return { value: `Bearer ${this.target.standingToken(cred.principal)}`, note: `Bearer <the standing token of ${cred.principal}: every fixture repository and the catalog>` };
        const tokenCase = this.tokenCase(c as FuzzCase & { credentials: { kind: 'token' } });
        const ex = await this.exchange(tokenCase, undefined, findings);
        let token: string | undefined;
        try {
          token = ex.status === 200 ? (JSON.parse(ex.body.toString('utf8')) as { token?: string }).token : undefined;
        } catch {
          token = undefined; // a 200 that is not the token JSON: the case goes without one
        }
        const what = this.scopesFor(c).join(' ') || 'no scope';
        return token ? { value: `Bearer ${token}`, note: `Bearer <a token of ${cred.principal} for ${what}>` } : { note: `(none: the token request for ${what} answered ${ex.status ?? ex.error})` };
      }
      case 'basic':
        return { value: this.target.basicOf(cred.principal), note: `Basic <correct credentials of ${cred.principal}>` };
      case 'bad-basic': {
        const value = `Basic ${wtf8(`${cred.username}:${cred.password}`).toString('base64')}`;
        return { value, note: `${value}   [base64 of ${JSON.stringify(`${cred.username}:${cred.password}`)}]` };
      }
      case 'forged':
        return { value: `Bearer ${this.target.forgeries.get(cred.label)}`, note: `Bearer <forged: ${cred.label}>` };
      case 'raw':
        return { value: headerValue(cred.value) };
    }
  }

  /** Renders, sends and checks one request; appends its findings. */
  private async exchange(c: FuzzCase, auth: { value?: string; note?: string } | undefined, findings: Finding[]): Promise<Exchange> {
    const headers: [string, string][] = [...c.headers];
    if (auth?.value !== undefined) headers.push(['Authorization', auth.value]);
    const request: WireRequest = { method: c.method, path: c.path, headers };
    if (c.body) {
      const { bytes, contentType } = renderBody(c.body, this.resolve);
      request.body = bytes;
      if (c.contentType === undefined) headers.push(['Content-Type', contentType]);
      if (c.chunked) request.chunked = true;
    }
    if (c.contentType) headers.push(['Content-Type', c.contentType]);
    const mark = this.target.logs.mark();
    const ex = await this.client.send(request);
    this.count(c, ex);
    if (DEBUG && routeLabel(c).includes(DEBUG)) console.log(describeExchange(ex, auth?.note));
    for (const v of checkExchange(c, ex)) {
      const finding: Finding = { ...v, exchange: ex, case: c, ...(auth?.note && { authorizationNote: auth.note }) };
      if (v.invariant === Invariant.serverError) finding.cause = causeOf(await this.target.logs.serverErrorAfter(mark));
      findings.push(finding);
    }
    if (ex.status === undefined || ++this.sinceHealthCheck >= 25) {
      this.sinceHealthCheck = 0;
      if (!(await this.target.alive())) {
        findings.push({ invariant: Invariant.processDied, detail: `after this request; last output:\n${this.target.registry.output().slice(-2000)}`, exchange: ex, case: c });
        throw new ProcessDied(findings);
      }
    }
    return ex;
  }

  private count(c: FuzzCase, ex: Exchange): void {
    const key = routeLabel(c);
    const statuses = this.coverage.get(key) ?? new Map<number | string, number>();
    const status = ex.status ?? 'none';
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    this.coverage.set(key, statuses);
  }

  /** Time spent per kind of credentials (FUZZ_VERBOSE prints it). */
  readonly timing = new Map<string, { n: number; ms: number }>();

  async run(c: FuzzCase): Promise<Outcome> {
    const started = performance.now();
    try {
      return await this.runOnce(c);
    } finally {
      const kind = c.credentials.kind === 'token' ? `token${c.credentials.scoped ? ' (scoped)' : ''}` : c.credentials.kind;
      const t = this.timing.get(kind) ?? { n: 0, ms: 0 };
      t.n++;
      t.ms += performance.now() - started;
      this.timing.set(kind, t);
    }
  }

  private async runOnce(c: FuzzCase): Promise<Outcome> {
    const findings: Finding[] = [];
    const auth = await this.authorization(c, findings);
    const exchange = await this.exchange(c, auth, findings);
    return { findings, exchange, ...(auth.note && { authorizationNote: auth.note }) };
  }
}

/** Thrown when the registry is gone: nothing after it can be checked. */
export class ProcessDied extends Error {
  constructor(readonly findings: Finding[]) {
    super('the registry process died or stopped answering /healthz');
  }
}
