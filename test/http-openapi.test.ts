/**
 * `/openapi.json` validates structurally as an OpenAPI 3.1 document (no validator package: the rules that
 * matter for clients and code generators are checked here): required top-level fields, every path with
 * operations, path template variables declared as required path parameters and the reverse, unique
 * operationIds and parameters, responses with descriptions, request bodies with content, every `$ref`
 * resolving inside the document, security requirements naming declared schemes, and JSON Schema `type`
 * keywords from the JSON Schema vocabulary.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { apiRoutes } from '../protocols/http.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const PATH_ITEM_KEYS = new Set([...METHODS, '$ref', 'summary', 'description', 'servers', 'parameters']);
const TYPES = new Set(['null', 'boolean', 'object', 'array', 'number', 'string', 'integer']);

type Json = any;

/** Resolves a local JSON pointer (`#/components/schemas/Error`). */
function resolvePointer(doc: Json, ref: string): unknown {
  assert.ok(ref.startsWith('#/'), `only local $refs: ${ref}`);
  let node: Json = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

/** Calls `visit(node, path)` for every object in the document. */
function walk(node: Json, path: string, visit: (node: Json, path: string) => void): void {
  if (node === null || typeof node !== 'object') return;
  visit(node, path);
  for (const [k, v] of Object.entries(node)) walk(v, `${path}/${k}`, visit);
}

describe('GET /openapi.json validates', () => {
  let t: HttpTestApp;
  let doc: Json;

  before(async () => {
    t = await bootHttpTestApp();
    const res = await t.request('GET', '/openapi.json', { token: null });
    assert.equal(res.status, 200);
    doc = res.body;
  });
  after(() => t.close());

  it('has the OpenAPI 3.1 top-level fields', () => {
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(typeof doc.info?.title, 'string');
    assert.equal(typeof doc.info?.version, 'string');
    assert.ok(doc.info.title && doc.info.version);
    assert.equal(typeof doc.paths, 'object');
    const allowed = new Set(['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components', 'security', 'tags', 'externalDocs']);
    for (const key of Object.keys(doc)) assert.ok(allowed.has(key) || key.startsWith('x-'), `unknown top-level field ${key}`);
    const schemes = Object.keys(doc.components?.securitySchemes ?? {});
    for (const [name, scheme] of Object.entries<Json>(doc.components.securitySchemes)) {
      assert.ok(['apiKey', 'http', 'mutualTLS', 'oauth2', 'openIdConnect'].includes(scheme.type), name);
      if (scheme.type === 'apiKey') assert.ok(['query', 'header', 'cookie'].includes(scheme.in) && scheme.name, name);
    }
    for (const requirement of doc.security ?? []) for (const name of Object.keys(requirement)) assert.ok(schemes.includes(name), `security names ${name}`);
  });

  it('documents every route, every path with operations and declared parameters', () => {
    const routes = apiRoutes();
    let operations = 0;
    const ids = new Set<string>();
    const schemes = Object.keys(doc.components.securitySchemes);
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      assert.match(path, /^\//, path);
      for (const key of Object.keys(item)) assert.ok(PATH_ITEM_KEYS.has(key) || key.startsWith('x-'), `${path}: unknown field ${key}`);
      const ops = METHODS.filter((m) => m in item);
      assert.ok(ops.length > 0, `${path} has operations`);
      const template = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      for (const method of ops) {
        const op = item[method];
        const where = `${method.toUpperCase()} ${path}`;
        operations++;
        assert.equal(typeof op.operationId, 'string', where);
        assert.ok(!ids.has(op.operationId), `${where}: operationId ${op.operationId} is unique`);
        ids.add(op.operationId);
        const params: Json[] = [...(item.parameters ?? []), ...(op.parameters ?? [])];
        const seen = new Set<string>();
        for (const p of params) {
          assert.equal(typeof p.name, 'string', where);
          assert.ok(['path', 'query', 'header', 'cookie'].includes(p.in), `${where}: ${p.name} in ${p.in}`);
          assert.ok(!seen.has(`${p.in}:${p.name}`), `${where}: ${p.in} parameter ${p.name} declared once`);
          seen.add(`${p.in}:${p.name}`);
          assert.ok(('schema' in p) !== ('content' in p), `${where}: ${p.name} has a schema or content`);
          if (p.in === 'path') {
            assert.equal(p.required, true, `${where}: path parameter ${p.name} is required`);
            assert.ok(template.includes(p.name), `${where}: path parameter ${p.name} is in the template`);
          }
        }
        for (const name of template) assert.ok(seen.has(`path:${name}`), `${where}: {${name}} is declared`);
        assert.ok(op.responses && Object.keys(op.responses).length > 0, `${where} has responses`);
        for (const [status, response] of Object.entries<Json>(op.responses)) {
          assert.match(status, /^([1-5]\d\d|[1-5]XX|default)$/, `${where}: response key ${status}`);
          if (!response.$ref) assert.equal(typeof response.description, 'string', `${where} ${status} has a description`);
          for (const [type, media] of Object.entries<Json>(response.content ?? {})) assert.equal(typeof media.schema, 'object', `${where} ${status} ${type}`);
        }
        if (op.requestBody) {
          assert.ok(Object.keys(op.requestBody.content ?? {}).length > 0, `${where}: request body has content`);
          assert.ok(['get', 'head', 'delete'].includes(method) === false, `${where}: no body on ${method}`);
        }
        for (const requirement of op.security ?? []) for (const name of Object.keys(requirement)) assert.ok(schemes.includes(name), `${where}: security ${name}`);
      }
    }
    assert.equal(operations, routes.length, 'one operation per route');
    for (const r of routes) assert.ok(doc.paths[r.path.replace(/:(\w+)/g, '{$1}')]?.[r.method.toLowerCase()], `${r.method} ${r.path} documented`);
  });

  it('resolves every $ref and uses JSON Schema types only', () => {
    let refs = 0;
    walk(doc, '#', (node, path) => {
      if (typeof node.$ref === 'string') {
        refs++;
        assert.notEqual(resolvePointer(doc, node.$ref), undefined, `${path}: $ref ${node.$ref} resolves`);
      }
      // a `type` keyword inside a schema (not a security scheme's type, not a property called "type")
      if (/\/(schema|items|properties\/[^/]+|additionalProperties|anyOf\/\d+|oneOf\/\d+|allOf\/\d+)$/.test(path) && 'type' in node) {
        const types = Array.isArray(node.type) ? node.type : [node.type];
        for (const type of types) assert.ok(TYPES.has(type), `${path}: type ${JSON.stringify(type)}`);
        if (Array.isArray(node.required)) for (const name of node.required) assert.equal(typeof name, 'string', `${path}: required`);
      }
    });
    assert.ok(refs > 0, 'the shared Error schema is referenced');
  });
});
