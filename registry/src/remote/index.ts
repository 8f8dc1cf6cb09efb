export { RemoteRegistry, DEFAULT_REMOTE_TIMEOUTS, MANIFEST_ACCEPT, pullScope, pushScope } from './client.js';
export type { RemoteBlob, RemoteManifest, RemoteManifestHead, RemoteRegistryOptions, RemoteTimeouts } from './client.js';
export { RemoteError, type RemoteFailure } from './errors.js';
export type { Credentials } from './tokens.js';
