// Reads the apiserver's audit log (write requests only, see the control plane's audit policy):
// what the apiserver itself saw, independent of what the operator reports about itself.
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
  const events: AuditEvent[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      events.push(JSON.parse(line) as AuditEvent);
    } catch {
      // a line being written right now
    }
  }
  return events.filter((e) => e.stage === 'ResponseComplete');
}

/** Write requests made by the operator process whose user agent names `identity`, after `since`. */
export function operatorWrites(path: string, identity: string, since: Date): AuditEvent[] {
  return readAudit(path).filter(
    (e) => WRITE_VERBS.has(e.verb) && (e.userAgent ?? '').includes(`(${identity})`) && new Date(e.requestReceivedTimestamp) >= since,
  );
}

export function describe(e: AuditEvent): string {
  const o = e.objectRef ?? {};
  return `${e.verb} ${o.apiGroup ? `${o.apiGroup}/` : ''}${o.resource ?? '?'}${o.subresource ? `/${o.subresource}` : ''} ${o.namespace ?? ''}/${o.name ?? ''}`;
}
