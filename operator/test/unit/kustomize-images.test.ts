// One kustomize setting points the operator at your own images: `images:` in an overlay of
// config/default rewrites the operator's image and WHARF_REGISTRY_IMAGE, the image of the
// registries it deploys (config/manager/kustomizeconfig.yaml). Built with the real kubectl.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadAll } from 'js-yaml';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from '../support/kube.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

mkdirSync(join(ROOT, '.test-work'), { recursive: true });
const dir = mkdtempSync(join(ROOT, '.test-work/kustomize-images-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('an overlay with images: sets the operator image and WHARF_REGISTRY_IMAGE', () => {
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    `resources: [${relative(dir, join(ROOT, 'config/default'))}]
images:
  - name: ghcr.io/wharf-dev/wharf-operator
    newName: registry.example.test/wharf/wharf-operator
    newTag: 0.1.0-test
  - name: ghcr.io/wharf-dev/wharf-registry
    newName: registry.example.test/wharf/wharf-registry
    digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`,
  );
  const objects = loadAll(execFileSync(join(ROOT, '.tools/bin/kubectl'), ['kustomize', dir], { encoding: 'utf8' })) as Any[];
  const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'wharf-operator');
  const container = deployment.spec.template.spec.containers[0];
  expect(container.image).toBe('registry.example.test/wharf/wharf-operator:0.1.0-test');
  expect(container.env.find((e: Any) => e.name === 'WHARF_REGISTRY_IMAGE').value).toBe(
    'registry.example.test/wharf/wharf-registry@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  );
  // The node agent (Registry.spec.nodeMirror) runs the operator's image: rewritten with it.
  expect(container.env.find((e: Any) => e.name === 'WHARF_NODE_AGENT_IMAGE').value).toBe('registry.example.test/wharf/wharf-operator:0.1.0-test');
  // Nothing else changed: the other env vars keep their fieldRefs.
  expect(container.env.filter((e: Any) => e.valueFrom).map((e: Any) => e.name)).toEqual(['POD_NAME', 'POD_NAMESPACE']);
});
