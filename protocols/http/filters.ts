/**
 * Filters and autoreply: CRUD over the per-user delivery rules of storage/delivery-settings.ts (the documents
 * the filters and autoreply plugins read at delivery time). Request bodies are the same zod schemas the store
 * validates with, so the API, the CLI and delivery agree on what a rule is. Writes pass the account pipeline
 * (`account.*Filter`, `account.*Autoreply` hooks).
 */
import { z } from 'zod';
import type { App } from '../app.ts';
import { deleteFilter, putFilter, setAutoreply, stopAutoreply } from '../../hooks/pipeline/index.ts';
import { AUTOREPLY_ID, AUTOREPLY_KIND, filterActionSchema, filterQuerySchema, getAutoreply, listFilters } from '../../storage/delivery-settings.ts';
import type { FilterData, StoredFilter } from '../../storage/delivery-settings.ts';
import { ApiError } from './errors.ts';
import { accountResult, id, iso, userParams } from './common.ts';
import { route } from './route.ts';
import type { Route } from './route.ts';

const filterParams = userParams.extend({ filter: id('filter') });

/** WildDuck's list form: `[[field, value], …]` and `[[action], …]` next to the objects themselves. */
function describe(data: FilterData) {
  const query = Object.entries(data.query).map(([k, v]) => [k, typeof v === 'number' ? v : String(v)]);
  const action = Object.entries(data.action).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]);
  return { query, action };
}

function view(filter: StoredFilter) {
  return { id: filter.id, name: filter.data.name, created: iso(filter.created), query: filter.data.query, action: filter.data.action, disabled: filter.data.disabled };
}

/** A filter action's `mailbox` must name one of the user's mailboxes (by id or path). */
async function checkMailbox(app: App, userId: string, data: { action?: { mailbox?: string } }): Promise<void> {
  const target = data.action?.mailbox;
  if (target === undefined) return;
  const byId = await app.storage.mailboxes.get(target);
  if (byId?.userId === userId) return;
  if (await app.storage.mailboxes.getByPath(userId, target)) return;
  throw new ApiError('NoSuchMailbox', `action.mailbox: no mailbox ${target}`);
}

async function findFilter(app: App, userId: string, filterId: string): Promise<StoredFilter> {
  const found = (await listFilters(app.storage.documents, userId)).find((f) => f.id === filterId);
  if (!found) throw new ApiError('FilterNotFound');
  return found;
}

const filterBody = z.object({
  name: z.string().trim().max(255).optional(),
  query: filterQuerySchema,
  action: filterActionSchema,
  disabled: z.boolean().optional(),
});

/** `false`, '' or null clear a date (WildDuck sends false). */
const optionalDate = z
  .union([z.string(), z.literal(false), z.null()])
  .transform((v, ctx) => {
    if (v === false || v === null || v === '') return null;
    const ms = Date.parse(v);
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: 'expected a date' });
      return z.NEVER;
    }
    return ms;
  })
  .optional();

export const filterRoutes: Route[] = [
  route({
    method: 'GET',
    path: '/users/:user/filters',
    summary: "List a user's filters in the order they apply",
    tag: 'Filters',
    access: 'owner',
    params: userParams,
    async handler({ app, user }) {
      const filters = await listFilters(app.storage.documents, user.id);
      return {
        results: filters.map((f) => ({ ...view(f), ...describe(f.data), originalQuery: f.data.query, originalAction: f.data.action })),
      };
    },
  }),

  route({
    method: 'POST',
    path: '/users/:user/filters',
    summary: 'Create a filter (conditions in query, what to do in action)',
    tag: 'Filters',
    access: 'owner',
    params: userParams,
    body: filterBody,
    response: z.object({ id: z.string() }),
    async handler({ app, ctx, user, body }) {
      await checkMailbox(app, user.id, body);
      const made = accountResult(await putFilter(app, ctx, user.id, body), { bodyPaths: true });
      return { id: made.id };
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user/filters/:filter',
    summary: 'Read one filter',
    tag: 'Filters',
    access: 'owner',
    params: filterParams,
    async handler({ app, user, params }) {
      return view(await findFilter(app, user.id, params.filter));
    },
  }),

  route({
    method: 'PUT',
    path: '/users/:user/filters/:filter',
    summary: 'Change a filter: the fields given (name, query, action, disabled) replace the stored ones',
    tag: 'Filters',
    access: 'owner',
    params: filterParams,
    body: filterBody.partial(),
    async handler({ app, ctx, user, params, body }) {
      const current = await findFilter(app, user.id, params.filter);
      const next = {
        name: body.name ?? current.data.name,
        query: body.query ?? current.data.query,
        action: body.action ?? current.data.action,
        disabled: body.disabled ?? current.data.disabled,
      };
      await checkMailbox(app, user.id, next);
      accountResult(await putFilter(app, ctx, user.id, next, current.id), { missing: 'FilterNotFound', bodyPaths: true });
      return {};
    },
  }),

  route({
    method: 'DELETE',
    path: '/users/:user/filters/:filter',
    summary: 'Delete a filter',
    tag: 'Filters',
    access: 'owner',
    params: filterParams,
    async handler({ app, ctx, user, params }) {
      accountResult(await deleteFilter(app, ctx, user.id, params.filter), { missing: 'FilterNotFound' });
      return {};
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user/autoreply',
    summary: "Read the user's autoreply (status false when none is set)",
    tag: 'Autoreply',
    access: 'owner',
    params: userParams,
    async handler({ app, user }) {
      const reply = await getAutoreply(app.storage.documents, user.id);
      const doc = reply ? await app.storage.documents.get(user.id, AUTOREPLY_KIND, AUTOREPLY_ID) : null;
      return {
        status: reply?.status ?? false,
        name: '',
        subject: reply?.subject ?? '',
        text: reply?.text ?? '',
        html: reply?.html ?? '',
        start: reply?.start != null ? iso(reply.start) : false,
        end: reply?.end != null ? iso(reply.end) : false,
        ...(doc ? { created: iso(doc.created) } : {}),
      };
    },
  }),

  route({
    method: 'PUT',
    path: '/users/:user/autoreply',
    summary: 'Set the autoreply; fields not given keep their stored values',
    tag: 'Autoreply',
    access: 'owner',
    params: userParams,
    body: z.object({
      status: z.boolean().optional(),
      name: z.string().max(255).optional().describe('Accepted for compatibility; the From name is the account name'),
      subject: z.string().max(998).optional(),
      text: z.string().max(128 * 1024).optional(),
      html: z.string().max(512 * 1024).optional(),
      start: optionalDate.describe('Start date (ISO), false for none'),
      end: optionalDate.describe('End date (ISO), false for none'),
    }),
    response: z.object({ id: z.string() }),
    async handler({ app, ctx, user, body }) {
      const current = (await getAutoreply(app.storage.documents, user.id)) ?? {};
      const { name: _name, ...fields } = body;
      const changes = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
      accountResult(await setAutoreply(app, ctx, user.id, { status: true, ...current, ...changes }), { bodyPaths: true });
      return { id: AUTOREPLY_ID };
    },
  }),

  route({
    method: 'DELETE',
    path: '/users/:user/autoreply',
    summary: 'Remove the autoreply',
    tag: 'Autoreply',
    access: 'owner',
    params: userParams,
    async handler({ app, ctx, user }) {
      accountResult(await stopAutoreply(app, ctx, user.id, 'delete'));
      return {};
    },
  }),
];
