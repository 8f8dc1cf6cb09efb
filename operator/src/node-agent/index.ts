export { MARKER, MIRROR_HOST_PATTERN, defaultServer, hostTablesOf, isMirrorHost, isOwnFile, isWharfFile, renderHostsToml, type MirroredHost, type RenderOptions, type WharfEndpoint } from './hosts-toml.js';
export { cleanHostsDir, HOSTS_FILE, ORIGINAL_FILE, SPEGEL_BACKUP_DIR, syncHostsDir, type SyncOptions, type SyncReport, type WriteMode } from './writer.js';
export { parseNodeAgentConfig, type NodeAgentConfig } from './config.js';
