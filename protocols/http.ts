/**
 * HTTP API listener. This build serves the operational endpoint only (`GET /health`, WildDuck's shape:
 * `{ success, version }`); the REST API for users, mailboxes and messages is added route by route on the
 * same listener. Every response is JSON; unknown routes get 404 with a JSON error code.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { App } from '../hooks/app.ts';
import { serverVersion } from './version.ts';
import type { Listener } from './listener.ts';

/** Defined with the TCP listener; re-exported for the modules that import it from here. */
export type { Listener };

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function route(app: App, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/health') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'Method not allowed', code: 'MethodNotAllowed' });
    try {
      await app.storage.ping();
      return send(res, 200, { success: true, version: serverVersion });
    } catch (err) {
      app.log.warn('health check failed', { err });
      return send(res, 500, { success: false, version: serverVersion, message: 'Storage is not reachable', code: 'StorageUnavailable' });
    }
  }
  return send(res, 404, { error: 'Unknown route', code: 'NotFound' });
}

export function startHttp(app: App): Promise<Listener> {
  const { host, port } = app.config.api;
  const log = app.log.child({ protocol: 'http' });
  const server = createServer((req, res) => {
    route(app, req, res).catch((err: unknown) => {
      log.error('request failed', { err, method: req.method, url: req.url });
      if (!res.headersSent) send(res, 500, { error: 'Internal error', code: 'InternalError' });
      else res.destroy();
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
      const describe = `http://${host}:${actualPort}`;
      log.info('listening', { url: describe });
      resolve({
        describe,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
