/**
 * Authentication for webmail front ends and application-specific passwords.
 *
 * `POST /authenticate` runs the same `authenticate()` pipeline as IMAP and POP3 logins (session protocol
 * 'http'), so the failed-login limits and any auth plugin apply unchanged; with `token: true` it issues a
 * per-user access token. ASP routes create (the password is answered once), list and delete a user's
 * application-specific passwords (storage/app-passwords.ts), which IMAP/POP3 logins accept for their scopes.
 * Tokens and ASPs are written through the account pipeline (`account.token`, `account.appPassword` hooks).
 */
import { z } from 'zod';
import { authenticate, createAppPassword, deleteAppPassword, issueToken, revokeTokens } from '../../hooks/pipeline/index.ts';
import { ASP_KIND, ASP_SCOPES } from '../../storage/app-passwords.ts';
import type { AppPasswordData } from '../../storage/app-passwords.ts';
import type { UserDocument } from '../../storage/ports.ts';
import { ApiError, verdictToHttp } from './errors.ts';
import { accountResult, id, iso, mainAddress, userParams } from './common.ts';
import { route } from './route.ts';
import type { Route } from './route.ts';

const aspShape = z.object({
  id: z.string(),
  description: z.string(),
  scopes: z.array(z.enum(ASP_SCOPES)),
  lastUse: z.object({ time: z.string().nullable(), event: z.string().nullable() }),
  created: z.string(),
  expires: z.string().optional(),
});

function aspView(doc: UserDocument<AppPasswordData>) {
  const { data } = doc;
  return {
    id: doc.id,
    description: data.description,
    scopes: data.scopes,
    lastUse: { time: data.lastUse ? iso(data.lastUse.time) : null, event: data.lastUse?.event ?? null },
    created: iso(doc.created),
    ...(data.expires !== null ? { expires: iso(data.expires) } : {}),
  };
}

const aspParams = userParams.extend({ asp: id('application-specific password') });

export const authRoutes: Route[] = [
  route({
    method: 'POST',
    path: '/authenticate',
    summary: 'Check a username and password (or application password), optionally issuing an access token',
    tag: 'Authentication',
    access: 'public',
    body: z.object({
      username: z.string().min(1).max(320).describe('Username or one of the user\'s addresses'),
      password: z.string().min(1).max(256),
      scope: z.enum(['master', 'imap', 'pop3', 'smtp']).default('master').describe('What the password must be valid for; application passwords never pass "master"'),
      token: z.boolean().default(false).describe('Issue an access token for this user (scope "master" only)'),
      protocol: z.string().max(64).optional().describe('Application name for the logs'),
    }),
    response: z.object({ id: z.string(), username: z.string(), address: z.string(), scope: z.string(), token: z.string().optional() }),
    async handler({ app, ctx, body }) {
      if (body.token && body.scope !== 'master') throw new ApiError('InputValidationError', 'Tokens are only issued for scope "master"');
      const result = await authenticate(app, ctx, { username: body.username, password: body.password, method: 'API', scope: body.scope });
      if (!result.ok) {
        if (result.verdict.code === 'AUTHENTICATIONFAILED') throw new ApiError('AuthFailed');
        throw verdictToHttp(result.verdict);
      }
      const user = result.value;
      const token = body.token ? accountResult(await issueToken(app, ctx, user.id)).token : undefined;
      return {
        id: user.id,
        username: user.username,
        address: await mainAddress(app.storage, user.id),
        scope: body.scope,
        require2fa: false,
        require2faEnabled: false,
        requirePasswordChange: false,
        ...(token ? { token } : {}),
      };
    },
  }),

  route({
    method: 'DELETE',
    path: '/authenticate',
    summary: 'Revoke the access token this request carries',
    tag: 'Authentication',
    access: 'token',
    async handler({ app, ctx, caller, token }) {
      if (caller.kind === 'user' && token) accountResult(await revokeTokens(app, ctx, caller.userId, caller.tokenId));
      return {};
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user/asps',
    summary: "List a user's application-specific passwords",
    tag: 'Application passwords',
    access: 'owner',
    params: userParams,
    response: z.object({ results: z.array(aspShape) }),
    async handler({ app, user }) {
      return { results: (await app.storage.documents.list<AppPasswordData>(user.id, ASP_KIND)).map(aspView) };
    },
  }),

  route({
    method: 'POST',
    path: '/users/:user/asps',
    summary: 'Create an application-specific password; the password is in this answer only',
    tag: 'Application passwords',
    access: 'owner',
    params: userParams,
    body: z.object({
      description: z.string().min(1).max(256),
      scopes: z.array(z.enum(ASP_SCOPES)).min(1).default(['*']).describe('imap, pop3, smtp, or * for all three'),
      password: z
        .string()
        .regex(/^\s*(?:[a-zA-Z]\s*){16}$/, 'must be 16 latin letters')
        .optional()
        .describe('Pregenerated password (16 latin letters); generated when absent'),
      ttl: z.number().int().positive().max(10 * 365 * 24 * 3600).optional().describe('Seconds of validity, renewed on every use'),
    }),
    response: z.object({ id: z.string(), password: z.string() }),
    async handler({ app, ctx, user, body }) {
      const created = accountResult(await createAppPassword(app, ctx, user.id, body), { missing: 'UserNotFound' });
      return { id: created.id, password: created.password! };
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user/asps/:asp',
    summary: 'Read one application-specific password (without the password)',
    tag: 'Application passwords',
    access: 'owner',
    params: aspParams,
    response: aspShape,
    async handler({ app, user, params }) {
      const doc = await app.storage.documents.get<AppPasswordData>(user.id, ASP_KIND, params.asp);
      if (!doc) throw new ApiError('AspNotFound');
      return aspView(doc);
    },
  }),

  route({
    method: 'DELETE',
    path: '/users/:user/asps/:asp',
    summary: 'Delete an application-specific password',
    tag: 'Application passwords',
    access: 'owner',
    params: aspParams,
    async handler({ app, ctx, user, params }) {
      accountResult(await deleteAppPassword(app, ctx, user.id, params.asp), { missing: 'AspNotFound' });
      return {};
    },
  }),
];
