export { render, configChecksum, type RenderedRegistry } from './render.js';
export { withDefaults, hasLocalState, isRegistry, type Registry, type RenderInputs } from './model.js';
export { names, selectorLabels, commonLabels, MANAGED_BY } from './names.js';
export { generateSecretValues, renderAdminSecret, renderTokenKeySecret, type GeneratedSecretValues } from './secrets.js';
export { CONFIG_HASH_ANNOTATION } from './workload.js';
export { imageVersion } from './image.js';
export { endpoints } from './endpoints.js';
export { referencesOf, referencesObject, digestReferencedData, type Reference } from './references.js';
