import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FilesystemBlobStore } from '../../src/storage/fs.js';
import { removeDir, tempDir } from '../support/registry.js';
import { blobStoreDriverSuite } from './driver-suite.js';

blobStoreDriverSuite('filesystem', async () => {
  const dir = await tempDir('wharf-fs-');
  const store = await new FilesystemBlobStore(dir).init();
  return {
    store,
    async cleanup() {
      // Committed uploads must not leave upload directories behind.
      const left = await readdir(join(dir, 'uploads'));
      await removeDir(dir);
      if (left.length > 0) throw new Error(`upload directories left behind: ${left.join(', ')}`);
    },
  };
});
