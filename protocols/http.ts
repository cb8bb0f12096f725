/**
 * HTTP API listener: the readable map of the API. A request goes through, in order:
 *
 * ```
 * route match            ── 404 NotFound / 405 MethodNotAllowed
 * caller from token      ── 401 InvalidToken (a token that is neither root nor a live user token)
 * access check           ── 401 AuthRequired (no token) / 403 MissingPrivileges (user token, someone else's data)
 * validation (zod)       ── 413 PayloadTooLarge while reading, 400 InvalidJson / InputValidationError + details
 * `:user` loaded         ── 404 UserNotFound
 * http.request gate      ── a plugin's verdict (verdictToHttp), or a plugin's own answer
 * handler                ── pipeline functions for every write; a verdict → verdictToHttp; ApiError → its status
 * reply                  ── `{ success: true, ... }`; one log line and metrics per request
 * ```
 *
 * Handlers live in protocols/http/*.ts by job; this file only routes, authorizes, validates and replies. Built on
 * `node:http`, which Node and Deno both provide, so there is no framework to adapt per runtime; the router,
 * validation (zod, the same schemas that produce `/openapi.json`) and error mapping are small and local.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { App } from './app.ts';
import { canonicalAddress, createContext, createSession } from '../hooks/context.ts';
import { runCommand } from '../hooks/pipeline/index.ts';
import type { Listener } from './net/listener.ts';
import { ApiError, errorBody, verdictToHttp } from './http/errors.ts';
import { limitedBody, mediaType, readJson } from './http/body.ts';
import { RawReply, Router, StreamReply, routeKey } from './http/route.ts';
import type { Caller, RawBody, Route } from './http/route.ts';
import { identifyCaller, requestToken } from './http/tokens.ts';
import { operationRoutes } from './http/operations.ts';
import { userRoutes } from './http/users.ts';
import { addressRoutes } from './http/addresses.ts';
import { authRoutes } from './http/authentication.ts';
import { mailboxRoutes } from './http/mailboxes.ts';
import { messageReadRoutes } from './http/messages.ts';
import { messageWriteRoutes } from './http/message-writes.ts';
import { searchRoutes } from './http/search.ts';
import { updateRoutes } from './http/updates.ts';
import { filterRoutes } from './http/filters.ts';
import { submitRoutes } from './http/submit.ts';

/** Defined with the TCP listener; re-exported for the modules that import it from here. */
export type { Listener };

export interface HttpListener extends Listener {
  readonly host: string;
  /** The bound port (useful when the configured port was 0). */
  readonly port: number;
}

/** The routing table; each `protocols/http/*.ts` file contributes its routes. */
export function apiRoutes(): Route[] {
  const routes: Route[] = [...userRoutes, ...addressRoutes, ...authRoutes, ...mailboxRoutes, ...messageReadRoutes, ...messageWriteRoutes, ...searchRoutes, ...submitRoutes, ...updateRoutes, ...filterRoutes];
  return [...operationRoutes({ routes: () => routes }), ...routes];
}

function send(res: ServerResponse, status: number, body: unknown, head: boolean): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(head ? undefined : text);
}

function sendRaw(res: ServerResponse, reply: RawReply, head: boolean): void {
  const bytes = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body;
  res.writeHead(reply.status, { 'content-type': reply.contentType, 'content-length': bytes.length });
  res.end(head ? undefined : bytes);
}

/**
 * Writes a streamed reply with back-pressure. Stops when the client goes away or `shutdown` aborts (the
 * generator sees its signal aborted and returns). A failure after the head is out can only cut the connection.
 */
async function sendStream(res: ServerResponse, reply: StreamReply, head: boolean, shutdown: AbortSignal): Promise<void> {
  const headers: Record<string, string | number> = { 'content-type': reply.contentType, ...reply.headers };
  if (reply.length !== null) headers['content-length'] = reply.length;
  res.writeHead(reply.status, headers);
  if (head) return void res.end();
  const done = new AbortController();
  const stop = () => done.abort();
  res.once('close', stop);
  shutdown.addEventListener('abort', stop, { once: true });
  try {
    for await (const chunk of reply.body(done.signal)) {
      if (done.signal.aborted) break;
      if (!res.write(chunk)) await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        done.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    res.end();
    // on shutdown the connection goes too (server.close() waits for it), after what was written
    if (shutdown.aborted) res.socket?.end();
  } finally {
    res.off('close', stop);
    shutdown.removeEventListener('abort', stop);
  }
}

/** Validates one part of the request; the path of every bad field goes into `details`. */
function validate<S extends z.ZodType>(schema: S | undefined, value: unknown, where: 'params' | 'query' | 'body'): z.output<S> | Record<string, never> {
  if (!schema) return {};
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({ path: [where, ...i.path].join('.'), message: i.message }));
  throw new ApiError('InputValidationError', `${details[0]!.path}: ${details[0]!.message}`, details);
}

/**
 * Access rules (see route.ts `Access`). Returns the id of the user a route with a `:user` segment is about (`me`
 * = the token's user), which the caller loads (404 UserNotFound) before validation of the rest.
 */
function authorize(route: Route, caller: Caller, params: Record<string, string>): string | null {
  if (route.access === 'public') return null;
  if (caller.kind === 'anonymous') throw new ApiError('AuthRequired');
  if (route.access === 'root' && caller.kind !== 'root') throw new ApiError('MissingPrivileges');
  if (params.user === undefined) return null;
  if (caller.kind === 'root') {
    if (params.user === 'me') throw new ApiError('InputValidationError', '"me" names the user of a user token; root must give a user id');
    return params.user;
  }
  // ids are hex: the token's own id in upper case is still its own
  if (params.user !== 'me' && params.user.toLowerCase() !== caller.userId) throw new ApiError('MissingPrivileges');
  return caller.userId;
}

/** What the request log line says about a request, filled in as it is handled. */
interface Outcome {
  route: string;
  status: number;
  /** Who asked: a root token (or root by loopback), a user token, or nobody. */
  caller?: Caller['kind'];
  /** The user name of the token's user, once loaded (routes about a user load it). */
  user?: string;
  /** The user the request is about (the token's user, or the one a root caller named). */
  userId: string | null;
  code?: string;
}

async function handle(app: App, router: Router, req: IncomingMessage, res: ServerResponse, outcome: Outcome, shutdown: AbortSignal): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const head = req.method === 'HEAD';
  const reply = (status: number, body: unknown) => {
    outcome.status = status;
    send(res, status, body, head);
  };
  try {
    const found = router.match(req.method ?? 'GET', url.pathname);
    if (!found) throw new ApiError('NotFound');
    if ('allowed' in found) {
      res.setHeader('allow', found.allowed.join(', '));
      throw new ApiError('MethodNotAllowed');
    }
    const { route } = found;
    outcome.route = route.path;

    const token = requestToken(req, url);
    const caller = await identifyCaller(app.config.api, app.storage, token, req.socket.remoteAddress);
    outcome.caller = caller.kind;
    if (caller.kind === 'user') outcome.userId = caller.userId;
    const userId = authorize(route, caller, found.params);

    const params = validate(route.params, userId === null ? found.params : { ...found.params, user: userId }, 'params');
    const queryInput = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'accessToken'));
    const query = validate(route.query, queryInput, 'query');
    const maxBody = typeof route.maxBody === 'function' ? route.maxBody(app.config) : (route.maxBody ?? app.config.api.maxBodyBytes);
    const type = mediaType(req);
    const raw: RawBody | null = route.rawBody?.includes(type)
      ? { type, size: req.headers['content-length'] === undefined ? null : Number(req.headers['content-length']), stream: limitedBody(req, maxBody) }
      : null;
    const body = route.body ? validate(route.body, raw ? {} : await readJson(req, maxBody), 'body') : {};

    const user = userId === null ? null : await app.storage.users.get(userId);
    if (userId !== null && !user) throw new ApiError('UserNotFound');
    if (user) outcome.userId = user.id;
    if (user && caller.kind === 'user') outcome.user = user.username;

    const session = createSession(app.log, {
      protocol: 'http',
      remoteAddress: canonicalAddress(req.socket.remoteAddress ?? ''),
      remotePort: req.socket.remotePort ?? null,
      user: user ? { id: user.id, username: user.username } : null,
    });
    const ctx = createContext(session, { route: routeKey(route) });

    const gate = await runCommand(app, 'http', ctx, { verb: routeKey(route), args: { params, query, body, userId: user?.id ?? null, caller: caller.kind } });
    if (!gate.ok) throw verdictToHttp(gate.verdict);
    if (gate.value) return reply(200, { success: true, ...gate.value });

    const result = await route.handler({ app, ctx, caller, params, query, body, user: user!, token, raw, headers: req.headers });
    if (result instanceof RawReply) {
      outcome.status = result.status;
      return sendRaw(res, result, head);
    }
    if (result instanceof StreamReply) {
      outcome.status = result.status;
      return await sendStream(res, result, head, shutdown);
    }
    return reply(200, { success: true, ...result });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    outcome.code = err.code;
    if (res.headersSent) return void res.destroy(); // a stream failed midway: all that is left is to cut it
    // the unread rest of an oversized body is not worth reading: close the connection after the answer
    if (err.status === 413) res.setHeader('connection', 'close');
    return reply(err.status, errorBody(err));
  }
}

export function startHttp(app: App): Promise<HttpListener> {
  const { host, port } = app.config.api;
  const log = app.log.child({ protocol: 'http' });
  const router = new Router(apiRoutes());
  // aborted on close(): ends open streams (Server-Sent Events) so the server can finish
  const shutdown = new AbortController();
  const server = createServer((req, res) => {
    const started = performance.now();
    const remoteAddress = canonicalAddress(req.socket.remoteAddress ?? ''); // the socket is gone once a closed connection ends
    const outcome: Outcome = { route: 'unmatched', status: 500, userId: null };
    handle(app, router, req, res, outcome, shutdown.signal)
      .catch((err: unknown) => {
        // a bug or an outage: logged with its stack, never shown
        log.error('request failed', { err, method: req.method, route: outcome.route });
        outcome.status = 500;
        outcome.code = 'InternalError';
        if (!res.headersSent) send(res, 500, errorBody(new ApiError('InternalError')), req.method === 'HEAD');
        else res.destroy();
      })
      .finally(() => {
        const seconds = (performance.now() - started) / 1000;
        app.metrics.httpRequest(req.method ?? '', outcome.route, outcome.status, outcome.code ?? null, seconds);
        log.info('request', {
          ip: remoteAddress,
          method: req.method,
          route: outcome.route,
          status: outcome.status,
          ms: Math.round(seconds * 1000),
          caller: outcome.caller,
          user: outcome.user,
          userId: outcome.userId ?? undefined,
          ...(outcome.code ? { code: outcome.code } : {}),
        });
      });
  });
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const describe = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
      log.info('listening', { url: describe });
      resolve({
        describe,
        host,
        port: actualPort,
        close: () =>
          new Promise<void>((done) => {
            shutdown.abort();
            server.close(() => done());
            server.closeIdleConnections?.();
          }),
      });
    });
  });
}
