/**
 * User administration: list (paged), create, read (with quota usage), update, delete, resolve a username,
 * log out everywhere. Field names follow WildDuck's API; WildDuck fields this server has no feature for
 * (2FA, encryption, ...) are accepted and ignored on input and answered with their neutral value.
 */
import { z } from 'zod';
import { changeUser, createUser, revokeTokens, updateSettings } from '../../hooks/pipeline/index.ts';
import type { UserUpdate } from '../../hooks/pipeline/index.ts';
import type { SettingsChange } from '../../hooks/types.ts';
import { findUser, normalizeTags, resolveAddress } from '../../storage/users.ts';
import { normalizeAddress } from '../../storage/addresses.ts';
import { MAILBOX_LANGUAGES } from '../../storage/mailbox-names.ts';
import { verifyPassword } from '../../storage/passwords.ts';
import type { StoragePorts, UserRecord } from '../../storage/ports.ts';
import { ApiError } from './errors.ts';
import { accountResult, mainAddress, quotaOf, storageCall, userParams } from './common.ts';
import { route } from './route.ts';
import type { Route } from './route.ts';
import { emailAddress, getDeliverySettings } from '../../storage/delivery-settings.ts';

const password = z.string().min(1).max(256);
const tagList = z
  .array(z.string().max(128))
  .max(100)
  .transform((tags) => normalizeTags(tags))
  .describe('Tags (labels for admins); stored trimmed and lowercased');
/** Comma-separated tags in a query parameter. */
const tagQuery = (description: string) =>
  z
    .string()
    .max(4096)
    .optional()
    .transform((v) => normalizeTags((v ?? '').split(',')))
    .describe(description);
/** Forwarding targets: e-mail addresses only (WildDuck's smtp:// relay and http(s) POST targets are not supported). */
const targets = z
  .array(emailAddress)
  .max(100)
  .describe('Forwarding addresses: a copy of every message that is neither spam nor deleted by a filter goes there; [] = none');
const spamLevel = z
  .number()
  .int()
  .min(0)
  .max(100)
  .nullable()
  .describe('0 = everything is spam, 100 = nothing is; in between a scanner score at or above it is spam; null = the server rule (addition)');
/** WildDuck shows 50 when no level is set. */
const DEFAULT_SPAM_LEVEL = 50;

/** The delivery-settings part of a POST/PUT body, when it has one. */
function deliveryChanges(body: { targets?: string[]; spamLevel?: number | null }): SettingsChange['changes'] | null {
  const changes: { forward?: string[]; spamLevel?: number | null } = {};
  if (body.targets !== undefined) changes.forward = body.targets;
  if (body.spamLevel !== undefined) changes.spamLevel = body.spamLevel;
  return Object.keys(changes).length ? changes : null;
}

const mailboxName = z
  .string()
  .trim()
  .min(1)
  .max(255)
  .refine((v) => !v.includes('/') && v.toUpperCase() !== 'INBOX', 'a top-level mailbox name other than INBOX');
const mailboxNames = z
  .object({ drafts: mailboxName.optional(), sent: mailboxName.optional(), trash: mailboxName.optional(), junk: mailboxName.optional() })
  .describe('Names for the special-use mailboxes, over the language defaults');
/** Bytes; 0 = the server default (`users.quota.storage`). */
const quota = z.number().int().nonnegative().describe('Storage quota in bytes; 0 = the server default');

// --- paging -------------------------------------------------------------------------------------------------

/**
 * API cursors wrap the storage cursor with the start cursors of the pages before it, so `previousCursor`
 * works over a keyset-paged backend. Opaque to clients; bound to the query that produced it.
 */
interface Cursor {
  q: string;
  /** Storage cursors that start page 1..n (page 1 starts at null). */
  s: Array<string | null>;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');
}

function decodeCursor(value: string, query: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Cursor;
    if (c.q === query && Array.isArray(c.s) && c.s.length > 0 && c.s.every((x) => x === null || typeof x === 'string')) return c;
  } catch {
    // fall through
  }
  throw new ApiError('InputValidationError', 'Invalid or foreign paging cursor');
}

async function listEntry(storage: StoragePorts, user: UserRecord) {
  const settings = await getDeliverySettings(storage.documents, user.id);
  return {
    id: user.id,
    username: user.username,
    name: user.name,
    address: await mainAddress(storage, user.id),
    tags: user.tags,
    targets: settings.forward,
    enabled2fa: [],
    autoreply: false,
    encryptMessages: false,
    encryptForwarded: false,
    quota: quotaOf(user).quota,
    hasPasswordSet: user.passwordHash !== null,
    activated: true,
    disabled: user.disabled,
    suspended: false,
  };
}

export const userRoutes: Route[] = [
  route({
    method: 'GET',
    path: '/users',
    summary: 'List users, paged',
    tag: 'Users',
    access: 'root',
    query: z.object({
      query: z.string().max(256).optional().describe('Substring of the username or name'),
      tags: tagQuery('Comma-separated tags: the user has at least one of them'),
      requiredTags: tagQuery('Comma-separated tags: the user has all of them'),
      limit: z.coerce.number().int().min(1).max(250).default(20).describe('Users per page'),
      next: z.string().max(8192).optional().describe('Cursor for the next page (nextCursor of the previous answer)'),
      previous: z.string().max(8192).optional().describe('Cursor for the previous page (previousCursor of the previous answer)'),
    }),
    response: z.object({
      total: z.number(),
      page: z.number(),
      previousCursor: z.union([z.string(), z.literal(false)]),
      nextCursor: z.union([z.string(), z.literal(false)]),
      query: z.string(),
      results: z.array(
        z.object({ id: z.string(), username: z.string(), name: z.string(), address: z.string(), tags: z.array(z.string()), disabled: z.boolean() }),
      ),
    }),
    async handler({ app, query }) {
      const q = query.query ?? '';
      const filter = { query: q || undefined, tags: query.tags, requiredTags: query.requiredTags };
      // cursors are bound to the whole filter
      const key = JSON.stringify([q, query.tags, query.requiredTags]);
      const given = query.next ?? query.previous;
      const cursor: Cursor = given ? decodeCursor(given, key) : { q: key, s: [null] };
      const page = await app.storage.users.list({ ...filter, limit: query.limit, cursor: cursor.s[cursor.s.length - 1] ?? null });
      const results = [];
      for (const user of page.items) results.push(await listEntry(app.storage, user));
      return {
        total: await app.storage.users.count(filter),
        page: cursor.s.length,
        previousCursor: cursor.s.length > 1 ? encodeCursor({ q: key, s: cursor.s.slice(0, -1) }) : false,
        nextCursor: page.next ? encodeCursor({ q: key, s: [...cursor.s, page.next] }) : false,
        query: q,
        results,
      };
    },
  }),

  route({
    method: 'POST',
    path: '/users',
    summary: 'Create a user with the default mailboxes',
    tag: 'Users',
    access: 'root',
    body: z.object({
      username: z.string().min(1).max(128).describe('Login name: letters, digits and . _ - @ +'),
      password: z.union([password, z.literal(false), z.literal('')]).describe('Password, or false / "" for a user who cannot log in with a password'),
      name: z.string().max(256).optional(),
      address: z.string().max(320).optional().describe('Main address; defaults to the username when it is an address'),
      emptyAddress: z.boolean().optional().describe('Create the user without any address'),
      quota: quota.optional(),
      language: z
        .string()
        .max(20)
        .optional()
        .describe(`Language code: names Drafts, Sent, Trash and Junk in it (${MAILBOX_LANGUAGES.join(', ')}); others use the configured names`),
      mailboxes: mailboxNames.optional(),
      tags: tagList.optional(),
      targets: targets.optional(),
      spamLevel: spamLevel.optional(),
    }),
    response: z.object({ id: z.string() }),
    async handler({ app, ctx, body }) {
      const address = body.emptyAddress ? undefined : (body.address ?? (body.username.includes('@') ? body.username : undefined));
      // storage says ALREADYEXISTS for a username and an address alike: tell them apart up front
      if (address && (await storageCall(() => app.storage.users.resolveAddress(normalizeAddress(address).address)))) throw new ApiError('AddressExistsError');
      const { user } = accountResult(
        await createUser(app, ctx, {
          username: body.username,
          password: body.password === false || body.password === '' ? null : body.password,
          name: body.name,
          addresses: address ? [address] : [],
          quota: body.quota ? { storage: body.quota } : undefined,
          language: body.language,
          mailboxes: body.mailboxes,
          tags: body.tags,
        }),
        { exists: 'UserExistsError' },
      );
      const changes = deliveryChanges(body);
      if (changes) {
        const set = await updateSettings(app, ctx, user.id, changes);
        if (!set.ok) await changeUser(app, ctx, user.id, { action: 'delete' });
        accountResult(set);
      }
      return { id: user.id };
    },
  }),

  route({
    method: 'GET',
    path: '/users/resolve/:username',
    summary: 'Find the id of a user by username or address',
    tag: 'Users',
    access: 'root',
    params: z.object({ username: z.string().min(1).max(320) }),
    response: z.object({ id: z.string() }),
    async handler({ app, params }) {
      const name = params.username;
      let user = await storageCall(() => findUser(app.storage, name)).catch(() => null);
      if (!user && name.includes('@')) {
        const address = await resolveAddress(app.storage, name).catch(() => null);
        if (address) user = await app.storage.users.get(address.userId);
      }
      if (!user) throw new ApiError('UserNotFound');
      return { id: user.id };
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user',
    summary: 'Read a user with quota usage and message counters',
    tag: 'Users',
    access: 'owner',
    params: userParams,
    response: z.object({
      id: z.string(),
      username: z.string(),
      name: z.string(),
      address: z.string(),
      limits: z.object({
        quota: z.object({ allowed: z.number(), used: z.number() }),
        messages: z.object({ allowed: z.number(), used: z.number() }).describe('Addition to WildDuck: message-count quota'),
      }),
      hasPasswordSet: z.boolean(),
      disabled: z.boolean(),
      tags: z.array(z.string()),
      targets: z.array(z.string()).describe('Forwarding addresses'),
      spamLevel: z.number().describe('The user\'s spam level; 50 when none is set'),
      created: z.string().describe('Addition to WildDuck: creation time'),
    }),
    async handler({ app, user }) {
      const settings = await storageCall(() => getDeliverySettings(app.storage.documents, user.id));
      return {
        id: user.id,
        username: user.username,
        name: user.name,
        address: await mainAddress(app.storage, user.id),
        retention: 0,
        enabled2fa: [],
        autoreply: false,
        encryptMessages: false,
        encryptForwarded: false,
        pubKey: '',
        keyInfo: false,
        metaData: {},
        internalData: {},
        targets: settings.forward,
        spamLevel: settings.spamLevel ?? DEFAULT_SPAM_LEVEL,
        limits: quotaOf(user),
        tags: user.tags,
        disabledScopes: [],
        hasPasswordSet: user.passwordHash !== null,
        activated: true,
        disabled: user.disabled,
        suspended: false,
        passwordPwned: false,
        require2faEnabled: false,
        requirePasswordChange: false,
        created: new Date(user.created).toISOString(),
      };
    },
  }),

  route({
    method: 'PUT',
    path: '/users/:user',
    summary: 'Update password, name, quota, tags, forwarding targets, spam level or the disabled flag',
    tag: 'Users',
    access: 'owner',
    params: userParams,
    body: z.object({
      existingPassword: z.string().max(256).optional().describe('When given, the current password must match'),
      password: z.union([password, z.literal(false)]).optional().describe('New password; false removes it'),
      name: z.string().max(256).optional(),
      quota: quota.optional(),
      disabled: z.boolean().optional().describe('A disabled user cannot log in'),
      tags: tagList.optional().describe('Replaces the tags (root only)'),
      targets: targets.optional(),
      spamLevel: spamLevel.optional(),
    }),
    async handler({ app, ctx, caller, user, body }) {
      if (caller.kind === 'user' && (body.quota !== undefined || body.disabled !== undefined || body.tags !== undefined)) {
        throw new ApiError('MissingPrivileges', 'Only root can change quota, tags or the disabled flag');
      }
      if (body.existingPassword !== undefined && !(await verifyPassword(user.passwordHash, body.existingPassword))) {
        throw new ApiError('AuthFailed', 'Password verification failed');
      }
      // one account change per kind of field: each passes the account hooks with its own action
      const updates: UserUpdate[] = [];
      if (body.name !== undefined || body.quota !== undefined || body.tags !== undefined) {
        updates.push({
          action: 'update',
          name: body.name,
          quota: body.quota === undefined ? undefined : { storage: body.quota || app.config.users.quota.storage },
          tags: body.tags,
        });
      }
      if (body.password !== undefined) updates.push({ action: 'password', password: body.password === false ? null : body.password });
      if (body.disabled !== undefined && body.disabled !== user.disabled) updates.push({ action: body.disabled ? 'disable' : 'enable' });
      for (const update of updates) accountResult(await changeUser(app, ctx, user.id, update), { missing: 'UserNotFound' });
      const changes = deliveryChanges(body);
      if (changes) accountResult(await updateSettings(app, ctx, user.id, changes), { missing: 'UserNotFound' });
      return {};
    },
  }),

  route({
    method: 'DELETE',
    path: '/users/:user',
    summary: 'Delete a user with all mailboxes, messages, addresses and documents',
    tag: 'Users',
    access: 'root',
    params: userParams,
    async handler({ app, ctx, user }) {
      accountResult(await changeUser(app, ctx, user.id, { action: 'delete' }), { missing: 'UserNotFound' });
      return {};
    },
  }),

  route({
    method: 'PUT',
    path: '/users/:user/logout',
    summary: 'Revoke every access token of the user and announce the logout',
    tag: 'Users',
    access: 'owner',
    params: userParams,
    body: z.object({ reason: z.string().max(256).optional().describe('Shown in logs') }),
    async handler({ app, ctx, user, body }) {
      const revoked = accountResult(await revokeTokens(app, ctx, user.id, null)).ids.length;
      // live sessions of other protocols can listen on this channel (not yet wired in IMAP/POP3)
      await app.storage.ephemeral.publish(`user:${user.id}:logout`, JSON.stringify({ reason: body.reason ?? '' }));
      ctx.log.info('user logged out', { user: user.id, revoked, reason: body.reason });
      return {};
    },
  }),
];

