import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/** `GET /v2/`: API version check. */
const base: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/v2/', { config: { action: 'base' } }, async () => ({}));
};

export default base;
