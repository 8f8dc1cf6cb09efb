import { isMirrorHost, type MirroredHost, type WharfEndpoint } from './hosts-toml.js';
import type { WriteMode } from './writer.js';

/** The node agent's settings: a JSON file the operator renders into the DaemonSet's ConfigMap. */
export interface NodeAgentConfig {
  /** containerd's config_path on the node, as mounted into the agent (default /etc/containerd/certs.d). */
  configPath: string;
  hosts: MirroredHost[];
  endpoint: WharfEndpoint;
  mode: WriteMode;
  /** Seconds between passes (files someone else removed are written again). */
  intervalSeconds: number;
  /** The Registry (`<namespace>/<name>`) the agent writes for; see SyncOptions.owner. */
  owner?: string;
  /** Entries of `hosts` that are not registry host names: left out (and logged), the others are written. */
  invalidHosts?: string[];
}

/** `<namespace>/<name>` of a Registry: two Kubernetes object names. */
export const OWNER = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?\/[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Checks and completes the settings; throws an Error naming the first bad field. Pure. */
export function parseNodeAgentConfig(raw: unknown): NodeAgentConfig {
  if (typeof raw !== 'object' || raw === null) throw new Error('node agent config: expected a JSON object');
  const doc = raw as Record<string, unknown>;
  const endpoint = doc.endpoint as Record<string, unknown> | undefined;
  if (!endpoint || typeof endpoint.url !== 'string' || !/^https?:\/\/[^/\s]+/.test(endpoint.url)) throw new Error('node agent config: endpoint.url must be an http:// or https:// URL');
  if (endpoint.ca !== undefined && (!Array.isArray(endpoint.ca) || !endpoint.ca.every((c) => typeof c === 'string'))) throw new Error('node agent config: endpoint.ca must be a list of file paths');
  if (!Array.isArray(doc.hosts)) throw new Error('node agent config: hosts must be a list');
  const hosts: MirroredHost[] = [];
  const invalidHosts: string[] = [];
  doc.hosts.forEach((h, i) => {
    const entry = (typeof h === 'string' ? { host: h } : h) as { host?: unknown; server?: unknown } | null;
    // One bad entry must not stop the node from being configured for the others.
    if (typeof entry?.host !== 'string' || !isMirrorHost(entry.host)) return void invalidHosts.push(JSON.stringify(entry?.host ?? h).slice(0, 300));
    if (entry.server !== undefined && (typeof entry.server !== 'string' || !/^https?:\/\//.test(entry.server))) throw new Error(`node agent config: hosts[${i}].server must be an http(s) URL`);
    hosts.push({ host: entry.host, ...(entry.server !== undefined && { server: entry.server as string }) });
  });
  if (doc.owner !== undefined && (typeof doc.owner !== 'string' || !OWNER.test(doc.owner))) throw new Error('node agent config: owner must be <namespace>/<name> of a Registry');
  const mode = doc.mode ?? 'replace';
  if (mode !== 'replace' && mode !== 'prepend') throw new Error('node agent config: mode must be replace or prepend');
  const interval = doc.intervalSeconds ?? 30;
  if (typeof interval !== 'number' || interval < 1) throw new Error('node agent config: intervalSeconds must be a number of at least 1');
  return {
    configPath: typeof doc.configPath === 'string' && doc.configPath !== '' ? doc.configPath : '/etc/containerd/certs.d',
    hosts,
    endpoint: { url: endpoint.url, ...(endpoint.ca !== undefined && { ca: endpoint.ca as string[] }), ...(endpoint.skipVerify === true && { skipVerify: true }) },
    mode,
    intervalSeconds: interval,
    ...(doc.owner !== undefined && { owner: doc.owner as string }),
    invalidHosts,
  };
}
