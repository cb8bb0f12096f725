/**
 * Route definitions: what a handler file exports and what the framework in protocols/http.ts needs to route,
 * authorize, validate and document a request. Schemas are zod objects; the same objects validate requests
 * and produce `/openapi.json`.
 */
import type { z } from 'zod';
import type { App } from '../app.ts';
import type { Config } from '../../hooks/config.ts';
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
  /** Request headers, names lowercased (Last-Event-ID for the event stream). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** For routes with `rawBody`: the unread body when its content type is one of them (else null, JSON was read). */
  readonly raw: RawBody | null;
}

/** A request body the handler reads itself, as a stream cut off at the route's body limit (413 while reading). */
export interface RawBody {
  /** Lowercased media type without parameters, e.g. `message/rfc822`. */
  readonly type: string;
  /** Declared Content-Length, or null for a chunked body. */
  readonly size: number | null;
  readonly stream: AsyncIterable<Uint8Array>;
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

/**
 * A streamed reply (message source, attachment, Server-Sent Events): `body(signal)` yields chunks, written as
 * they come with back-pressure. `signal` aborts when the client goes away or the listener shuts down; the
 * generator should then return. `length` is sent as Content-Length when known.
 */
export class StreamReply {
  readonly status = 200;
  readonly contentType: string;
  readonly body: (signal: AbortSignal) => AsyncIterable<Uint8Array | string>;
  readonly headers: Readonly<Record<string, string>>;
  readonly length: number | null;
  constructor(
    contentType: string,
    body: (signal: AbortSignal) => AsyncIterable<Uint8Array | string>,
    options: { headers?: Record<string, string>; length?: number | null } = {},
  ) {
    this.contentType = contentType;
    this.body = body;
    this.headers = options.headers ?? {};
    this.length = options.length ?? null;
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
  /** Largest accepted request body in bytes (or computed from config); defaults to `config.api.maxBodyBytes`. */
  readonly maxBody?: number | ((config: Config) => number);
  /** Content types the handler reads itself (`req.raw`) instead of a JSON body, e.g. `['message/rfc822']`. */
  readonly rawBody?: readonly string[];
  /** Response shape for the OpenAPI document (the `success` flag is added). */
  readonly response?: AnyObject;
  /** True when the route answers with something other than `{ success, ... }` JSON (documented as text). */
  readonly rawResponse?: string;
  handler(req: RouteRequest<P, Q, B>): Promise<JsonReply | RawReply | StreamReply>;
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
