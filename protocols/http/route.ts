/**
 * Route definitions: what a handler file exports and what the framework in protocols/http.ts needs to route,
 * authorize, validate and document a request. Schemas are zod objects; the same objects validate requests
 * and produce `/openapi.json`.
 */
import type { z } from 'zod';
import type { App } from '../../hooks/app.ts';
import type { HookContext } from '../../hooks/context.ts';
import type { UserRecord } from '../../storage/ports.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * Who may call a route:
 * - `public`: anyone (health, OpenAPI document, POST /authenticate);
 * - `owner`: root, or a user token whose user is the route's `:user` (`me` names the token's user);
 * - `token`: root or any valid user token (DELETE /authenticate);
 * - `root`: the root token (or loopback when allowed) only.
 */
export type Access = 'public' | 'owner' | 'token' | 'root';

/** Who is calling, as the framework established it. */
export type Caller = { kind: 'root'; via: 'token' | 'loopback' } | { kind: 'user'; userId: string; tokenId: string } | { kind: 'anonymous' };

type AnyObject = z.ZodObject;

export interface RouteRequest<P extends AnyObject, Q extends AnyObject, B extends AnyObject> {
  readonly app: App;
  /** Hook context for pipeline calls (session protocol 'http', remote address, the caller's user when known). */
  readonly ctx: HookContext;
  readonly caller: Caller;
  readonly params: z.output<P>;
  readonly query: z.output<Q>;
  readonly body: z.output<B>;
  /** For routes with a `:user` segment: that user, loaded (404 UserNotFound before the handler otherwise). */
  readonly user: UserRecord;
  /** The access token the request carried, if any (DELETE /authenticate revokes it). */
  readonly token: string | null;
}

/** A non-JSON reply (Prometheus text, raw message source): sent as-is. */
export class RawReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string | Uint8Array;
  constructor(contentType: string, body: string | Uint8Array, status = 200) {
    this.contentType = contentType;
    this.body = body;
    this.status = status;
  }
}

/** A JSON reply: `{ success: true, ...data }`, or another status/shape when `status`/`bare` say so. */
export type JsonReply = Record<string, unknown>;

export interface Route<P extends AnyObject = AnyObject, Q extends AnyObject = AnyObject, B extends AnyObject = AnyObject> {
  readonly method: Method;
  /** Path pattern with `:name` segments, e.g. `/users/:user/addresses/:address`. */
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  readonly access: Access;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  /** Largest accepted request body in bytes; defaults to `config.api.maxBodyBytes`. */
  readonly maxBody?: number;
  /** Response shape for the OpenAPI document (the `success` flag is added). */
  readonly response?: AnyObject;
  /** True when the route answers with something other than `{ success, ... }` JSON (documented as text). */
  readonly rawResponse?: string;
  handler(req: RouteRequest<P, Q, B>): Promise<JsonReply | RawReply>;
}

/** Declares a route with its handler typed from the schemas. */
export function route<P extends AnyObject = AnyObject, Q extends AnyObject = AnyObject, B extends AnyObject = AnyObject>(def: Route<P, Q, B>): Route {
  return def as unknown as Route;
}

/** The route key plugins see in the `http.request` HookMap, e.g. `POST /users/:user/asps`. */
export function routeKey(r: Pick<Route, 'method' | 'path'>): string {
  return `${r.method} ${r.path}`;
}

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

interface CompiledRoute {
  route: Route;
  segments: string[];
}

/**
 * A routing table: literal segments win over `:params` at the same position (so `/users/resolve/:username`
 * is not taken for `/users/:user`), then definition order. Path segments are percent-decoded once.
 */
export class Router {
  readonly routes: readonly Route[];
  #compiled: CompiledRoute[];

  constructor(routes: readonly Route[]) {
    const seen = new Set<string>();
    for (const r of routes) {
      const key = routeKey(r);
      if (seen.has(key)) throw new Error(`duplicate route ${key}`);
      seen.add(key);
    }
    for (const r of routes) {
      if (r.access === 'owner' && !r.path.includes('/:user')) throw new Error(`${routeKey(r)}: owner routes need a :user segment`);
    }
    this.routes = routes;
    this.#compiled = routes.map((route) => ({ route, segments: split(route.path) }));
  }

  /** The route for a method and path; `allowed` lists the methods the path has when the method has none. */
  match(method: string, pathname: string): RouteMatch | { allowed: string[] } | null {
    let parts: string[];
    try {
      parts = split(pathname).map((s) => decodeURIComponent(s));
    } catch {
      return null;
    }
    const candidates: Array<{ c: CompiledRoute; params: Record<string, string>; score: number }> = [];
    for (const c of this.#compiled) {
      const params = matchSegments(c.segments, parts);
      if (params) candidates.push({ c, params, score: c.segments.filter((s) => !s.startsWith(':')).length });
    }
    if (!candidates.length) return null;
    candidates.sort((a, b) => b.score - a.score);
    const wanted = method === 'HEAD' ? 'GET' : method;
    const hit = candidates.find((x) => x.c.route.method === wanted); // sorted by score, then definition order
    if (hit) return { route: hit.c.route, params: hit.params };
    return { allowed: [...new Set(candidates.map((x) => x.c.route.method))] };
  }
}

function split(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = parts[i]!;
    else if (p !== parts[i]) return null;
  }
  return params;
}
