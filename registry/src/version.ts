/** The registry's release version; a unit test keeps it equal to package.json's. */
export const REGISTRY_VERSION = '0.1.0';
