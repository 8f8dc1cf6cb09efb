import { inject } from 'vitest';
import { fuzzSuite } from './support/suite.js';

// The embedded database (PGlite, in the registry's own process), as `make run` starts it.
fuzzSuite('PGlite', async () => ({ pgliteTemplate: inject('pgliteTemplate') }), { runs: 1000, batches: 12 });
