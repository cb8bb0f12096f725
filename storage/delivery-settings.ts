/**
 * Per-user delivery rules, kept as per-user documents (UserDocumentsPort) and shared by the delivery plugins
 * (filters, spam routing, forwarding, autoreply), the CLI and the HTTP API:
 *
 *   kind 'filter'    one document per filter, applied oldest first (WildDuck's filter model)
 *   kind 'autoreply' id 'default': the vacation reply
 *   kind 'settings'  id 'delivery': forwarding targets and the spam level
 *
 * Every document is validated with zod on write; on read a document that no longer validates is skipped
 * (filters) or treated as unset (autoreply, settings), so one bad row never stops delivery.
 */
import { z } from 'zod';
import type { Id, UserDocument, UserDocumentsPort } from './ports.ts';

export const FILTER_KIND = 'filter';
export const AUTOREPLY_KIND = 'autoreply';
export const AUTOREPLY_ID = 'default';
export const SETTINGS_KIND = 'settings';
export const DELIVERY_SETTINGS_ID = 'delivery';

/** The read side delivery plugins get (hooks/storage-reader.ts). */
export type DocumentsReader = Pick<UserDocumentsPort, 'list' | 'get'>;

/** A plain e-mail address (forward targets): local@domain, no display name, no spaces. */
export const emailAddress = z
  .string()
  .trim()
  .max(320)
  // the domain's first label has no dot, so the expression cannot backtrack (`[^…]+\.[^…]+` with `.` in both
  // classes took quadratic time on a long run of dots; zod runs the expression even past `max`)
  .regex(/^[^\s@<>()",;:]+@[^\s@<>()",;:.]+\.[^\s@<>()",;:]+$/u, 'expected an e-mail address like user@example.com')
  .transform((value) => value.toLowerCase());

const term = z.string().trim().min(1).max(255);

/**
 * Conditions, all of which must hold (WildDuck's `query`). Header terms are case-insensitive substrings:
 * `from` looks at From and Sender, `to` at To, Cc and the delivery address, `listId` at the id part of List-ID.
 * `text`: every word (or "quoted phrase") must occur in the message's text parts. `ha`: true = has an
 * attachment, false = has none. `size`: positive = at least that many bytes, negative = at most.
 */
export const filterQuerySchema = z
  .object({
    from: term.optional(),
    to: term.optional(),
    subject: term.optional(),
    listId: term.optional(),
    text: term.optional(),
    ha: z.boolean().optional(),
    size: z.number().int().refine((n) => n !== 0, 'size must not be 0').optional(),
  })
  .strict()
  .refine((q) => Object.values(q).some((v) => v !== undefined), 'a filter needs at least one condition');

/**
 * What a matching filter does (WildDuck's `action`). When several filters match, the first one to set an action
 * decides it; forward targets of every matching filter add up. `spam: false` keeps a message out of Junk even
 * when the spam scanner says spam. `mailbox` is a mailbox id (or a path, for hand-written rules).
 */
export const filterActionSchema = z
  .object({
    seen: z.boolean().optional(),
    flag: z.boolean().optional(),
    delete: z.boolean().optional(),
    spam: z.boolean().optional(),
    mailbox: z.string().trim().min(1).max(1024).optional(),
    targets: z.array(emailAddress).max(100).optional(),
  })
  .strict()
  .refine((a) => Object.values(a).some((v) => v !== undefined), 'a filter needs at least one action');

export const filterSchema = z
  .object({
    name: z.string().trim().max(255).default(''),
    query: filterQuerySchema,
    action: filterActionSchema,
    disabled: z.boolean().default(false),
  })
  .strict();

export type FilterQuery = z.output<typeof filterQuerySchema>;
export type FilterAction = z.output<typeof filterActionSchema>;
export type FilterData = z.output<typeof filterSchema>;
export type FilterInput = z.input<typeof filterSchema>;

/** Vacation reply: sent while `status` is on and now is within [start, end] (ms since epoch; null = open). */
export const autoreplySchema = z
  .object({
    status: z.boolean().default(true),
    start: z.number().int().nullable().default(null),
    end: z.number().int().nullable().default(null),
    /** Empty: "Auto: " + the original subject. */
    subject: z.string().max(998).default(''),
    text: z.string().max(128 * 1024).default(''),
    html: z.string().max(512 * 1024).default(''),
  })
  .strict()
  .refine((a) => a.start === null || a.end === null || a.start <= a.end, { message: 'start must not be after end', path: ['end'] });

export type AutoreplyData = z.output<typeof autoreplySchema>;
export type AutoreplyInput = z.input<typeof autoreplySchema>;

/**
 * Per-user delivery settings. `forward`: copies of every message that is neither spam nor deleted by a filter go
 * there too. `spamLevel` (WildDuck): 0 = everything is spam, 100 = nothing the scanner says is spam, in between
 * the scanner's verdict counts as spam when its score (reject 75, rewrite subject / spam 50, add header 25) is at
 * least the level; null = the server's default rule (every spam verdict counts).
 */
export const deliverySettingsSchema = z
  .object({
    forward: z.array(emailAddress).max(100).default([]),
    spamLevel: z.number().int().min(0).max(100).nullable().default(null),
  })
  .strict();

export type DeliverySettings = z.output<typeof deliverySettingsSchema>;
export type DeliverySettingsInput = z.input<typeof deliverySettingsSchema>;

/** A validation failure, with the path of the bad value ("query.size: ..."). */
export class DeliverySettingsError extends Error {
  readonly code = 'INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'DeliverySettingsError';
  }
}

/** Validates `input` against one of the schemas above; throws DeliverySettingsError naming the bad value. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.map(String).join('.');
  throw new DeliverySettingsError(path ? `${path}: ${issue.message}` : issue.message);
}

export interface StoredFilter {
  readonly id: Id;
  readonly data: FilterData;
  readonly created: number;
}

/** The user's filters in the order they apply (oldest first); invalid documents are left out. */
export async function listFilters(docs: DocumentsReader, userId: Id): Promise<StoredFilter[]> {
  const out: StoredFilter[] = [];
  for (const doc of await docs.list(userId, FILTER_KIND)) {
    const parsed = filterSchema.safeParse(doc.data);
    if (parsed.success) out.push({ id: doc.id, data: parsed.data, created: doc.created });
  }
  return out;
}

/** Validates and stores a new filter (or replaces filter `id`). Throws DeliverySettingsError. */
export async function putFilter(docs: UserDocumentsPort, userId: Id, input: unknown, id?: Id): Promise<UserDocument<FilterData>> {
  const data = parse(filterSchema, input);
  return docs.put<FilterData>(userId, FILTER_KIND, data, id === undefined ? undefined : { id });
}

export function deleteFilter(docs: UserDocumentsPort, userId: Id, id: Id): Promise<boolean> {
  return docs.delete(userId, FILTER_KIND, id);
}

/** The autoreply document, or null when none is stored (or it no longer validates). */
export async function getAutoreply(docs: DocumentsReader, userId: Id): Promise<AutoreplyData | null> {
  const doc = await docs.get(userId, AUTOREPLY_KIND, AUTOREPLY_ID);
  if (!doc) return null;
  const parsed = autoreplySchema.safeParse(doc.data);
  return parsed.success ? parsed.data : null;
}

export async function setAutoreply(docs: UserDocumentsPort, userId: Id, input: unknown): Promise<AutoreplyData> {
  const data = parse(autoreplySchema, input);
  await docs.put<AutoreplyData>(userId, AUTOREPLY_KIND, data, { id: AUTOREPLY_ID });
  return data;
}

/** Turns the autoreply off, keeping its text for next time. False when there was none. */
export async function disableAutoreply(docs: UserDocumentsPort, userId: Id): Promise<boolean> {
  const current = await getAutoreply(docs, userId);
  if (!current) return false;
  await docs.put<AutoreplyData>(userId, AUTOREPLY_KIND, { ...current, status: false }, { id: AUTOREPLY_ID });
  return true;
}

/** True when the autoreply is on and `now` lies within its start and end. */
export function autoreplyActive(autoreply: AutoreplyData | null, now: number): autoreply is AutoreplyData {
  if (!autoreply || !autoreply.status) return false;
  if (autoreply.start !== null && now < autoreply.start) return false;
  if (autoreply.end !== null && now > autoreply.end) return false;
  return true;
}

/** The user's delivery settings, defaults filled in. */
export async function getDeliverySettings(docs: DocumentsReader, userId: Id): Promise<DeliverySettings> {
  const doc = await docs.get(userId, SETTINGS_KIND, DELIVERY_SETTINGS_ID);
  const parsed = deliverySettingsSchema.safeParse(doc?.data ?? {});
  return parsed.success ? parsed.data : deliverySettingsSchema.parse({});
}

const settingsOfRequest = new WeakMap<object, Promise<DeliverySettings>>();

/**
 * The recipient's delivery settings for one delivery request (a `delivery.route` argument), read once however many
 * taps ask (spam routing and forwarding both do). The answer is shared: read it, never change it.
 */
export function deliverySettingsFor(docs: DocumentsReader, request: { readonly recipient: { readonly userId: Id } }): Promise<DeliverySettings> {
  let settings = settingsOfRequest.get(request);
  if (!settings) {
    settings = getDeliverySettings(docs, request.recipient.userId);
    settingsOfRequest.set(request, settings);
  }
  return settings;
}

/** Changes some delivery settings, keeping the others. Throws DeliverySettingsError. */
export async function updateDeliverySettings(docs: UserDocumentsPort, userId: Id, changes: DeliverySettingsInput): Promise<DeliverySettings> {
  const current = await getDeliverySettings(docs, userId);
  const data = parse(deliverySettingsSchema, { ...current, ...changes });
  await docs.put<DeliverySettings>(userId, SETTINGS_KIND, data, { id: DELIVERY_SETTINGS_ID });
  return data;
}
