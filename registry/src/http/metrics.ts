import type { FastifyPluginAsync } from 'fastify';

/** `/metrics` in the Prometheus text format. Unauthenticated, like /healthz: scrape it from inside the cluster. */
const metrics: FastifyPluginAsync = async (app) => {
  app.get('/metrics', async (_request, reply) => reply.type(app.metrics.contentType).send(await app.metrics.metrics()));
};

export default metrics;
