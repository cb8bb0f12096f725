/** Operational routes: health (storage reachable), Prometheus metrics, the OpenAPI document. */
import { z } from 'zod';
import { serverVersion } from '../net/version.ts';
import { ApiError } from './errors.ts';
import { openApiDocument } from './openapi.ts';
import { RawReply, route } from './route.ts';
import type { Route } from './route.ts';

export function operationRoutes(deps: { routes: () => readonly Route[] }): Route[] {
  let document: string | null = null;
  const all = (): Route[] => [...self, ...deps.routes()];
  const self: Route[] = [
    route({
      method: 'GET',
      path: '/health',
      summary: 'Storage is reachable',
      tag: 'Operations',
      access: 'public',
      response: z.object({ version: z.string() }),
      async handler({ app }) {
        try {
          await app.storage.ping();
        } catch (err) {
          app.log.warn('health check failed', { err });
          throw new ApiError('StorageUnavailable');
        }
        return { version: serverVersion };
      },
    }),
    route({
      method: 'GET',
      path: '/metrics',
      summary: 'Connections, commands, deliveries, errors and durations in the Prometheus text format',
      tag: 'Operations',
      access: 'root',
      rawResponse: 'text/plain; version=0.0.4',
      async handler({ app }) {
        return new RawReply('text/plain; version=0.0.4; charset=utf-8', app.metrics.render());
      },
    }),
    route({
      method: 'GET',
      path: '/openapi.json',
      summary: 'This API as an OpenAPI 3.1 document',
      tag: 'Operations',
      access: 'public',
      rawResponse: 'application/json',
      async handler() {
        document ??= JSON.stringify(openApiDocument(all()));
        return new RawReply('application/json; charset=utf-8', document);
      },
    }),
  ];
  return self;
}
