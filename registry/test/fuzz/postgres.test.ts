import { inject } from 'vitest';
import { createTestDatabase } from '../support/pg.js';
import { fuzzSuite } from './support/suite.js';

// PostgreSQL, the production driver: the run's shared server, a database of this file's own.
fuzzSuite('PostgreSQL', async () => ({ databaseUrl: await createTestDatabase(inject('pgAdminUrl'), 'wharf_fuzz') }), { runs: 1000, batches: 12 });
