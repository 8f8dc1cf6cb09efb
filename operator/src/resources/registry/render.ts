// render(registry, inputs) → the desired objects of a Registry. Pure and deterministic: the same
// input gives byte-identical output (a test proves it). The reconciler applies the result with
// server-side apply; generated Secrets are rendered separately because they are created once.
import { createHash } from 'node:crypto';
import { stableStringify } from '../../runtime/apply.js';
import { ownerReference } from '../../runtime/owners.js';
import type { KubeObject } from '../../kube/types.js';
import { renderConfigFile } from './config.js';
import { endpoints } from './endpoints.js';
import { imageVersion } from './image.js';
import { hasLocalState, type Registry, type RenderInputs } from './model.js';
import { commonLabels } from './names.js';
import { renderConfigMap, renderDataVolume, renderIngress, renderPodDisruptionBudget, renderService } from './objects.js';
import { renderDeployment } from './workload.js';

export interface RenderedRegistry {
  /** In apply order: configuration and storage first, the workload after them. */
  objects: KubeObject[];
  /** Kinds the Registry may own but that are not wanted now (to be deleted if present). */
  unwanted: { kind: 'PodDisruptionBudget' | 'Ingress'; name: string }[];
  image: string;
  version: string;
  configHash: string;
  endpoint: string;
  externalEndpoint?: string;
}

export function configChecksum(configFile: string, inputs: RenderInputs): string {
  return createHash('sha256').update(stableStringify({ configFile, referencedData: inputs.referencedDataDigest })).digest('hex').slice(0, 32);
}

export function render(reg: Registry, inputs: RenderInputs): RenderedRegistry {
  const image = reg.spec.image ?? inputs.defaultImage;
  const version = imageVersion(image);
  const labels = commonLabels(reg, version);
  const owner = [ownerReference(reg)];
  const configFile = renderConfigFile(reg);
  const configHash = configChecksum(configFile, inputs);
  const objects: KubeObject[] = [renderConfigMap(reg, configFile, labels, owner)];
  if (hasLocalState(reg.spec)) objects.push(renderDataVolume(reg, labels, owner));
  objects.push(renderService(reg, labels, owner));
  objects.push(renderDeployment(reg, image, version, configHash, owner));
  const unwanted: RenderedRegistry['unwanted'] = [];
  if (reg.spec.replicas > 1) objects.push(renderPodDisruptionBudget(reg, labels, owner));
  else unwanted.push({ kind: 'PodDisruptionBudget', name: reg.metadata.name });
  if (reg.spec.ingress.enabled) objects.push(renderIngress(reg, labels, owner));
  else unwanted.push({ kind: 'Ingress', name: reg.metadata.name });
  const ep = endpoints(reg);
  return { objects, unwanted, image, version, configHash, endpoint: ep.endpoint, externalEndpoint: ep.externalEndpoint };
}
