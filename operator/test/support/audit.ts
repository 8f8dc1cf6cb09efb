// Reads the apiserver's audit log (write requests, and reads of Leases; see the control plane's
// audit policy): what the apiserver itself saw, independent of what the operator reports about
// itself, in the order and at the times the apiserver received the requests.
import { readFileSync } from 'node:fs';

export interface AuditEvent {
  stage: string;
  verb: string;
  user: { username: string };
  userAgent?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string; apiGroup?: string; subresource?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
}

export const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

export function readAudit(path: string): AuditEvent[] {
  // The text after the last newline is a line still being written.
  const lines = readFileSync(path, 'utf8').split('\n').slice(0, -1);
  return lines.filter((line) => line.trim()).map((line) => JSON.parse(line) as AuditEvent).filter((e) => e.stage === 'ResponseComplete');
}

/** Write requests made by the operator process whose user agent names `identity`, after `since`. */
export function operatorWrites(path: string, identity: string, since: Date): AuditEvent[] {
  return readAudit(path).filter(
    (e) => WRITE_VERBS.has(e.verb) && (e.userAgent ?? '').includes(`(${identity})`) && new Date(e.requestReceivedTimestamp) >= since,
  );
}

/** Requests the operator process `identity` made on the Lease `name`, in the order the apiserver received them. */
export function leaseRequests(path: string, identity: string, name: string): AuditEvent[] {
  return readAudit(path)
    .filter((e) => e.objectRef?.resource === 'leases' && e.objectRef.name === name && (e.userAgent ?? '').includes(`(${identity})`))
    .sort((x, y) => receivedMicros(x) - receivedMicros(y));
}

/** When the apiserver received the request, in microseconds since the epoch (audit timestamps are MicroTime). */
export function receivedMicros(e: AuditEvent): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(e.requestReceivedTimestamp);
  if (!m) throw new Error(`unexpected audit timestamp ${e.requestReceivedTimestamp}`);
  return Date.parse(`${m[1]}Z`) * 1000 + Number((m[2] ?? '').padEnd(6, '0').slice(0, 6));
}

export function describe(e: AuditEvent): string {
  const o = e.objectRef ?? {};
  return `${e.verb} ${o.apiGroup ? `${o.apiGroup}/` : ''}${o.resource ?? '?'}${o.subresource ? `/${o.subresource}` : ''} ${o.namespace ?? ''}/${o.name ?? ''}`;
}
