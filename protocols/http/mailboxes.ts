/**
 * Mailboxes: list (with counters), create, read, rename / (un)subscribe, delete. Every write goes through the
 * mailbox pipeline functions, so plugins that guard IMAP CREATE/RENAME/DELETE/SUBSCRIBE hold here too. Paths
 * use '/' as the hierarchy delimiter and are Unicode (not modified UTF-7).
 */
import { z } from 'zod';
import { createMailbox, deleteMailbox, renameMailbox, subscribeMailbox } from '../../hooks/pipeline/index.ts';
import type { HookContext } from '../../hooks/context.ts';
import type { App } from '../app.ts';
import { deny } from '../../hooks/verdict.ts';
import { MAILBOX_DELIMITER } from '../../storage/ports.ts';
import type { MailboxRecord } from '../../storage/ports.ts';
import { ApiError, verdictToHttp } from './errors.ts';
import { id, queryBool, unwrap, userParams } from './common.ts';
import { route } from './route.ts';
import type { Route } from './route.ts';

export const mailboxParams = userParams.extend({ mailbox: id('mailbox', 'resolve').describe('ID of the mailbox, or "resolve" with ?path=') });

/** Mailbox path: '/'-separated, no empty levels, at most 1024 characters; "inbox" in any case is INBOX. */
const mailboxPath = z
  .string()
  .trim()
  .min(1)
  .max(1024)
  .refine((p) => p.split(MAILBOX_DELIMITER).every((part) => part.length > 0), 'path levels must not be empty')
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), 'path must not contain control characters')
  .transform((p) => (p.toUpperCase() === 'INBOX' ? 'INBOX' : p))
  .describe('Full path, levels separated by "/"');

const mailboxShape = z.object({
  id: z.string(),
  name: z.string(),
  path: z.string(),
  specialUse: z.string().nullable(),
  modifyIndex: z.number(),
  subscribed: z.boolean(),
  hidden: z.boolean(),
  total: z.number().optional(),
  unseen: z.number().optional(),
  size: z.number().optional(),
});

function view(box: MailboxRecord) {
  return {
    id: box.id,
    name: box.path.split(MAILBOX_DELIMITER).pop()!,
    path: box.path,
    specialUse: box.specialUse,
    modifyIndex: box.highestModseq,
    subscribed: box.subscribed,
    hidden: false,
    encryptMessages: false,
    retention: 0,
  };
}

/** The user's mailbox named by `:mailbox` (an id, or `resolve` + `?path=`), else 404 NoSuchMailbox. */
export async function findMailbox(app: App, userId: string, mailbox: string, path?: string): Promise<MailboxRecord> {
  const box = mailbox === 'resolve' ? (path ? await app.storage.mailboxes.getByPath(userId, path) : null) : await app.storage.mailboxes.get(mailbox);
  if (!box || box.userId !== userId) throw new ApiError('NoSuchMailbox');
  return box;
}

/** Creates the missing parent levels of `path`, as IMAP CREATE and RENAME do (RFC 3501 §6.3.3, §6.3.5). */
async function ensureParents(app: App, ctx: HookContext, userId: string, path: string): Promise<void> {
  const parts = path.split(MAILBOX_DELIMITER);
  for (let depth = 1; depth < parts.length; depth++) {
    const parent = parts.slice(0, depth).join(MAILBOX_DELIMITER);
    if (await app.storage.mailboxes.getByPath(userId, parent)) continue;
    const made = await createMailbox(app, ctx, { userId, path: parent, subscribed: true });
    if (!made.ok && made.verdict.code !== 'ALREADYEXISTS') throw verdictToHttp(made.verdict);
  }
}

export const mailboxRoutes: Route[] = [
  route({
    method: 'GET',
    path: '/users/:user/mailboxes',
    summary: "List a user's mailboxes",
    tag: 'Mailboxes',
    access: 'owner',
    params: userParams,
    query: z.object({
      specialUse: queryBool('Only mailboxes with a special use'),
      showHidden: queryBool('Accepted for compatibility; no mailbox is hidden'),
      counters: queryBool('Add total and unseen message counts'),
      sizes: queryBool('Add the total size of the messages in bytes'),
    }),
    response: z.object({ results: z.array(mailboxShape) }),
    async handler({ app, user, query }) {
      let boxes = await app.storage.mailboxes.list(user.id);
      if (query.specialUse) boxes = boxes.filter((b) => b.specialUse !== null || b.path === 'INBOX');
      // INBOX first, then by path, the order WildDuck lists them in
      boxes.sort((a, b) => (a.path === 'INBOX' ? -1 : b.path === 'INBOX' ? 1 : a.path.localeCompare(b.path)));
      const results = [];
      for (const box of boxes) {
        const entry: Record<string, unknown> = view(box);
        if (query.counters || query.sizes) {
          const c = await app.storage.mailboxes.counters(box.id);
          if (query.counters) Object.assign(entry, { total: c.messages, unseen: c.unseen });
          if (query.sizes) entry.size = c.size;
        }
        results.push(entry);
      }
      return { results };
    },
  }),

  route({
    method: 'POST',
    path: '/users/:user/mailboxes',
    summary: 'Create a mailbox (and missing parent levels)',
    tag: 'Mailboxes',
    access: 'owner',
    params: userParams,
    body: z.object({
      path: mailboxPath,
      hidden: z.boolean().optional().describe('Accepted for compatibility; ignored'),
      retention: z.number().optional().describe('Accepted for compatibility; ignored'),
    }),
    response: z.object({ id: z.string() }),
    async handler({ app, ctx, user, body }) {
      if (body.path === 'INBOX') throw verdictToHttp(deny('ALREADYEXISTS', 'INBOX already exists'));
      await ensureParents(app, ctx, user.id, body.path);
      const box = unwrap(await createMailbox(app, ctx, { userId: user.id, path: body.path, subscribed: true }));
      return { id: box.id };
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user/mailboxes/:mailbox',
    summary: 'Read a mailbox with its counters (`resolve` + `?path=` looks it up by path)',
    tag: 'Mailboxes',
    access: 'owner',
    params: mailboxParams,
    query: z.object({ path: mailboxPath.optional().describe('With :mailbox = "resolve": the path to look up') }),
    response: mailboxShape,
    async handler({ app, user, params, query }) {
      const box = await findMailbox(app, user.id, params.mailbox, query.path);
      const c = await app.storage.mailboxes.counters(box.id);
      return { ...view(box), total: c.messages, unseen: c.unseen, size: c.size };
    },
  }),

  route({
    method: 'PUT',
    path: '/users/:user/mailboxes/:mailbox',
    summary: 'Rename or move a mailbox (with its children), or change its subscription',
    tag: 'Mailboxes',
    access: 'owner',
    params: mailboxParams,
    body: z.object({
      path: mailboxPath.optional().describe('New full path'),
      subscribed: z.boolean().optional(),
      hidden: z.boolean().optional().describe('Accepted for compatibility; ignored'),
      retention: z.number().optional().describe('Accepted for compatibility; ignored'),
    }),
    async handler({ app, ctx, user, params, body }) {
      const box = await findMailbox(app, user.id, params.mailbox);
      if (body.path !== undefined && body.path !== box.path) {
        if (box.path === 'INBOX') throw verdictToHttp(deny('CANNOT', 'INBOX cannot be renamed'));
        if (body.path === 'INBOX') throw verdictToHttp(deny('ALREADYEXISTS', 'INBOX already exists'));
        if (body.path.startsWith(box.path + MAILBOX_DELIMITER)) throw verdictToHttp(deny('CANNOT', 'A mailbox cannot be moved into itself'));
        if (await app.storage.mailboxes.getByPath(user.id, body.path)) throw verdictToHttp(deny('ALREADYEXISTS', 'Target mailbox already exists'));
        await ensureParents(app, ctx, user.id, body.path);
        unwrap(await renameMailbox(app, ctx, { userId: user.id, fromPath: box.path, toPath: body.path }));
      }
      if (body.subscribed !== undefined && body.subscribed !== box.subscribed) {
        unwrap(await subscribeMailbox(app, ctx, { userId: user.id, mailboxId: box.id, subscribed: body.subscribed }));
      }
      return {};
    },
  }),

  route({
    method: 'DELETE',
    path: '/users/:user/mailboxes/:mailbox',
    summary: 'Delete a mailbox and its messages (never INBOX; special-use mailboxes only with force)',
    tag: 'Mailboxes',
    access: 'owner',
    params: mailboxParams,
    query: z.object({ force: queryBool('Addition to WildDuck: also delete a special-use mailbox (Sent, Trash, ...)') }),
    async handler({ app, ctx, user, params, query }) {
      const box = await findMailbox(app, user.id, params.mailbox);
      if (box.path === 'INBOX') throw verdictToHttp(deny('CANNOT', 'INBOX cannot be deleted'));
      if (box.specialUse && !query.force) throw verdictToHttp(deny('CANNOT', `${box.specialUse} mailbox cannot be deleted without force=true`));
      unwrap(await deleteMailbox(app, ctx, { userId: user.id, mailboxId: box.id }));
      return {};
    },
  }),
];
