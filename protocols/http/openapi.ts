/**
 * `/openapi.json`: an OpenAPI 3.1 document generated from the routing table and the zod schemas that
 * validate requests, so the document cannot drift from what the server accepts.
 */
import { z } from 'zod';
import { serverVersion } from '../net/version.ts';
import type { Route } from './route.ts';
import { HTTP_ERRORS } from './errors.ts';

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  delete json.$schema;
  return json;
}

function parameters(schema: z.ZodObject | undefined, where: 'path' | 'query'): Json[] {
  if (!schema) return [];
  const json = schemaOf(schema);
  const props = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required as string[] | undefined) ?? []);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    const p: Json = { name, in: where, required: where === 'path' || required.has(name), schema: rest };
    if (description) p.description = description;
    return p;
  });
}

const errorSchema: Json = {
  type: 'object',
  properties: {
    error: { type: 'string', description: 'What went wrong, for people.' },
    code: { type: 'string', description: 'Stable error code (see the catalogue in protocols/http/README.md).' },
    details: { description: 'For InputValidationError: one entry per bad field, with its path.' },
  },
  required: ['error', 'code'],
};

function operation(r: Route): Json {
  const op: Json = {
    operationId: `${r.method.toLowerCase()}${r.path.replace(/[/:.]+(\w)/g, (_m, c: string) => c.toUpperCase()).replace(/[^\w]/g, '')}`,
    summary: r.summary,
    tags: [r.tag],
    parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
    responses: {} as Json,
  };
  if (r.access === 'public') op.security = [];
  if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: schemaOf(r.body) } } };
  if (r.rawBody) {
    const content = (op.requestBody as { content?: Json } | undefined)?.content ?? {};
    for (const type of r.rawBody) content[type] = { schema: { type: 'string', format: 'binary' } };
    op.requestBody = { required: true, content };
  }
  const responses = op.responses as Json;
  if (r.rawResponse) {
    responses['200'] = { description: 'Success', content: { [r.rawResponse]: { schema: { type: 'string' } } } };
  } else {
    const body = r.response ? schemaOf(r.response) : { type: 'object', properties: {} };
    const props = { success: { type: 'boolean', const: true }, ...((body.properties as Json | undefined) ?? {}) };
    responses['200'] = {
      description: 'Success',
      content: { 'application/json': { schema: { ...body, type: 'object', properties: props, required: ['success', ...((body.required as string[]) ?? [])] } } },
    };
  }
  responses.default = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  return op;
}

export function openApiDocument(routes: readonly Route[]): Json {
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const path = r.path.replace(/:(\w+)/g, '{$1}');
    (paths[path] ??= {})[r.method.toLowerCase()] = operation(r);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'WildDuck-compatible mail server API',
      version: serverVersion,
      description:
        'User, address, mailbox and application-password administration, compatible with WildDuck\'s REST API. ' +
        'Error codes: ' +
        Object.keys(HTTP_ERRORS).join(', ') +
        ', plus the pipeline verdict codes (OVERQUOTA, ALREADYEXISTS, NONEXISTENT, CANNOT, LIMIT, ...).',
    },
    paths,
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: {
        AccessTokenHeader: { type: 'apiKey', in: 'header', name: 'X-Access-Token' },
        AccessTokenQuery: { type: 'apiKey', in: 'query', name: 'accessToken' },
      },
    },
    security: [{ AccessTokenHeader: [] }, { AccessTokenQuery: [] }],
  };
}
