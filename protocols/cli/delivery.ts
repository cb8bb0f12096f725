/**
 * `wildduck` commands for per-user delivery rules (storage/delivery-settings.ts): filters, autoreply, forwarding
 * and the spam level. protocols/cli/main.ts parses the arguments (with DELIVERY_OPTIONS) and calls `deliveryCommand`.
 *
 *   wildduck filter add USER [--name N] CONDITIONS... ACTIONS...
 *       conditions: --from X --to X --subject X --list-id X --text WORDS --has-attachment|--no-attachment
 *                   --larger SIZE --smaller SIZE          (SIZE in bytes, or with k / M)
 *       actions:    --mailbox PATH --seen --flag --delete --spam|--not-spam --forward ADDR (repeatable)
 *   wildduck filter list USER
 *   wildduck filter del USER ID
 *   wildduck autoreply set USER --subject S --text T [--html H] [--start ISO] [--end ISO]
 *   wildduck autoreply show USER
 *   wildduck autoreply off USER
 *   wildduck forward set USER ADDR...
 *   wildduck forward off USER
 *   wildduck spam-level USER 0-100|default
 *
 * USER is a user name or one of the user's addresses. Writes pass the account pipeline (`account.*Filter`,
 * `account.*Autoreply`, `account.*Settings` hooks: forwarding and the spam level are delivery settings); reads use
 * the app's storage.
 */
import type { Id, StoragePorts, UserRecord } from '../../storage/ports.ts';
import { StorageError } from '../../storage/ports.ts';
import { resolveAddress } from '../../storage/users.ts';
import { deleteFilter, putFilter, setAutoreply, stopAutoreply, updateSettings } from '../../hooks/pipeline/index.ts';
import { getAutoreply, getDeliverySettings, listFilters } from '../../storage/delivery-settings.ts';
import type { FilterAction, FilterQuery, StoredFilter } from '../../storage/delivery-settings.ts';
import { writeOut } from '../../hooks/runtime.ts';
import { valueOf } from './boot-app.ts';
import type { CliApp } from './boot-app.ts';

export const DELIVERY_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  subject: { type: 'string' },
  'list-id': { type: 'string' },
  text: { type: 'string' },
  html: { type: 'string' },
  'has-attachment': { type: 'boolean' },
  'no-attachment': { type: 'boolean' },
  larger: { type: 'string' },
  smaller: { type: 'string' },
  mailbox: { type: 'string' },
  seen: { type: 'boolean' },
  flag: { type: 'boolean' },
  delete: { type: 'boolean' },
  spam: { type: 'boolean' },
  'not-spam': { type: 'boolean' },
  forward: { type: 'string', multiple: true },
  start: { type: 'string' },
  end: { type: 'string' },
} as const;

export const DELIVERY_USAGE = `  wildduck filter add USER [--name N] [--from X] [--to X] [--subject X] [--list-id X] [--text WORDS]
                  [--has-attachment|--no-attachment] [--larger SIZE] [--smaller SIZE]
                  [--mailbox PATH] [--seen] [--flag] [--delete] [--spam|--not-spam] [--forward ADDR]...
  wildduck filter list USER
  wildduck filter del USER ID
  wildduck autoreply set USER --subject S --text T [--html H] [--start ISO-DATE] [--end ISO-DATE]
  wildduck autoreply show USER
  wildduck autoreply off USER
  wildduck forward set USER ADDR...
  wildduck forward off USER
  wildduck spam-level USER 0-100|default`;

export const DELIVERY_COMMANDS: ReadonlySet<string> = new Set(['filter', 'autoreply', 'forward', 'spam-level']);

/** A command line that cannot work (cli.ts prints it with the usage text). */
export class DeliveryUsageError extends Error {}

type Values = Record<string, unknown>;

async function findUser(storage: StoragePorts, name: string | undefined): Promise<UserRecord> {
  if (!name) throw new DeliveryUsageError('a USER is required');
  let user = await storage.users.getByUsername(name);
  if (!user && name.includes('@')) {
    const address = await resolveAddress(storage, name).catch(() => null);
    if (address) user = await storage.users.get(address.userId);
  }
  if (!user) throw new StorageError('NONEXISTENT', `no such user "${name}"`);
  return user;
}

/** "2000", "500k", "10M" → bytes. */
export function parseSize(value: string, option: string): number {
  const m = /^(\d+)\s*([kKmM]?)[bB]?$/.exec(value.trim());
  if (!m) throw new DeliveryUsageError(`${option} must be a size like 20000, 500k or 10M`);
  const unit = m[2]!.toLowerCase() === 'k' ? 1024 : m[2]!.toLowerCase() === 'm' ? 1024 * 1024 : 1;
  const bytes = Number(m[1]) * unit;
  if (bytes < 1) throw new DeliveryUsageError(`${option} must be at least 1 byte`);
  return bytes;
}

function parseDate(value: unknown, option: string): number | null {
  if (value === undefined) return null;
  const time = Date.parse(String(value));
  if (!Number.isFinite(time)) throw new DeliveryUsageError(`${option} must be a date like 2025-07-01 or 2025-07-01T09:00:00Z`);
  return time;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

async function filterAdd({ app, ctx }: CliApp, user: UserRecord, values: Values): Promise<void> {
  const { storage } = app;
  if (values['has-attachment'] && values['no-attachment']) throw new DeliveryUsageError('--has-attachment and --no-attachment exclude each other');
  if (values.spam && values['not-spam']) throw new DeliveryUsageError('--spam and --not-spam exclude each other');
  if (values.larger !== undefined && values.smaller !== undefined) throw new DeliveryUsageError('use either --larger or --smaller');
  const query: FilterQuery = {
    from: str(values.from),
    to: str(values.to),
    subject: str(values.subject),
    listId: str(values['list-id']),
    text: str(values.text),
    ha: values['has-attachment'] ? true : values['no-attachment'] ? false : undefined,
    size: values.larger !== undefined ? parseSize(String(values.larger), '--larger') : values.smaller !== undefined ? -parseSize(String(values.smaller), '--smaller') : undefined,
  };
  let mailbox: Id | undefined;
  if (values.mailbox !== undefined) {
    const box = await storage.mailboxes.getByPath(user.id, String(values.mailbox));
    if (!box) throw new StorageError('NONEXISTENT', `${user.username} has no mailbox "${String(values.mailbox)}"`);
    mailbox = box.id;
  }
  const action: FilterAction = {
    seen: values.seen ? true : undefined,
    flag: values.flag ? true : undefined,
    delete: values.delete ? true : undefined,
    spam: values.spam ? true : values['not-spam'] ? false : undefined,
    mailbox,
    targets: (values.forward as string[] | undefined)?.length ? (values.forward as string[]) : undefined,
  };
  const made = valueOf(await putFilter(app, ctx, user.id, { name: str(values.name) ?? '', query: strip(query), action: strip(action) }));
  writeOut(`added filter ${made.id} for ${user.username}\n`);
}

function strip<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** One line per filter: id, name, conditions, actions. */
export async function describeFilter(storage: StoragePorts, filter: StoredFilter): Promise<string> {
  const { query, action } = filter.data;
  const conditions: string[] = [];
  for (const key of ['from', 'to', 'subject', 'listId', 'text'] as const) {
    if (query[key] !== undefined) conditions.push(`${key}=${JSON.stringify(query[key])}`);
  }
  if (query.ha !== undefined) conditions.push(query.ha ? 'has-attachment' : 'no-attachment');
  if (query.size !== undefined) conditions.push(query.size > 0 ? `larger=${query.size}` : `smaller=${-query.size}`);
  const actions: string[] = [];
  for (const key of ['seen', 'flag', 'delete', 'spam'] as const) {
    if (action[key] !== undefined) actions.push(action[key] ? key : `not-${key}`);
  }
  if (action.mailbox !== undefined) {
    const box = await storage.mailboxes.get(action.mailbox).catch(() => null);
    actions.push(`mailbox=${JSON.stringify(box?.path ?? action.mailbox)}`);
  }
  if (action.targets?.length) actions.push(`forward=${action.targets.join(',')}`);
  return [filter.id, filter.data.name || '-', conditions.join(' '), actions.join(' '), filter.data.disabled ? 'disabled' : ''].join('\t').trimEnd();
}

async function filterCommand(cli: CliApp, sub: string | undefined, args: string[], values: Values): Promise<void> {
  if (sub !== 'add' && sub !== 'list' && sub !== 'del') throw new DeliveryUsageError(`unknown filter command "${sub ?? ''}"`);
  const { storage } = cli.app;
  const user = await findUser(storage, args[0]);
  if (sub === 'add') return filterAdd(cli, user, values);
  if (sub === 'list') {
    for (const filter of await listFilters(storage.documents, user.id)) writeOut(`${await describeFilter(storage, filter)}\n`);
    return;
  }
  const id = args[1];
  if (!id) throw new DeliveryUsageError('filter del needs an ID (see filter list)');
  const deleted = await deleteFilter(cli.app, cli.ctx, user.id, id);
  if (!deleted.ok && deleted.verdict.code === 'NONEXISTENT') throw new StorageError('NONEXISTENT', `${user.username} has no filter ${id}`);
  valueOf(deleted);
  writeOut(`deleted filter ${id}\n`);
}

async function autoreplyCommand({ app, ctx }: CliApp, sub: string | undefined, args: string[], values: Values): Promise<void> {
  if (sub !== 'set' && sub !== 'show' && sub !== 'off') throw new DeliveryUsageError(`unknown autoreply command "${sub ?? ''}"`);
  const { storage } = app;
  const user = await findUser(storage, args[0]);
  if (sub === 'set') {
    if (values.text === undefined && values.html === undefined) throw new DeliveryUsageError('autoreply set needs --text (or --html)');
    const set = await setAutoreply(app, ctx, user.id, {
      status: true,
      subject: str(values.subject) ?? '',
      text: str(values.text) ?? '',
      html: str(values.html) ?? '',
      start: parseDate(values.start, '--start'),
      end: parseDate(values.end, '--end'),
    });
    const data = valueOf(set).autoreply!;
    const range = [data.start, data.end].map((t) => (t === null ? '…' : new Date(t).toISOString())).join(' – ');
    writeOut(`autoreply on for ${user.username} (${range})\n`);
    return;
  }
  if (sub === 'off') {
    valueOf(await stopAutoreply(app, ctx, user.id, 'off'));
    writeOut(`autoreply off for ${user.username}\n`);
    return;
  }
  const data = await getAutoreply(storage.documents, user.id);
  if (!data) return writeOut('autoreply: none\n');
  const when = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());
  writeOut(`status: ${data.status ? 'on' : 'off'}\nstart: ${when(data.start)}\nend: ${when(data.end)}\nsubject: ${data.subject}\ntext: ${data.text}\n`);
}

async function forwardCommand({ app, ctx }: CliApp, sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'set' && sub !== 'off') throw new DeliveryUsageError(`unknown forward command "${sub ?? ''}"`);
  const user = await findUser(app.storage, args[0]);
  const targets = sub === 'set' ? args.slice(1) : [];
  if (sub === 'set' && targets.length === 0) throw new DeliveryUsageError('forward set needs at least one ADDR (forward off removes them)');
  const settings = valueOf(await updateSettings(app, ctx, user.id, { forward: targets }));
  writeOut(settings.forward.length ? `${user.username} forwards to ${settings.forward.join(', ')}\n` : `forwarding off for ${user.username}\n`);
}

async function spamLevelCommand({ app, ctx }: CliApp, args: string[]): Promise<void> {
  const { storage } = app;
  const user = await findUser(storage, args[0]);
  const raw = args[1];
  if (raw === undefined) {
    const { spamLevel } = await getDeliverySettings(storage.documents, user.id);
    return writeOut(`${spamLevel ?? 'default'}\n`);
  }
  const level = raw === 'default' ? null : Number(raw);
  if (level !== null && !(Number.isInteger(level) && level >= 0 && level <= 100)) throw new DeliveryUsageError('the spam level is 0 (all spam) to 100 (no spam), or "default"');
  valueOf(await updateSettings(app, ctx, user.id, { spamLevel: level }));
  writeOut(`spam level of ${user.username}: ${level ?? 'default'}\n`);
}

/** Runs one of DELIVERY_COMMANDS. `rest` is what follows the command word. */
export async function deliveryCommand(cli: CliApp, command: string, rest: string[], values: Values): Promise<void> {
  switch (command) {
    case 'filter':
      return filterCommand(cli, rest[0], rest.slice(1), values);
    case 'autoreply':
      return autoreplyCommand(cli, rest[0], rest.slice(1), values);
    case 'forward':
      return forwardCommand(cli, rest[0], rest.slice(1));
    case 'spam-level':
      return spamLevelCommand(cli, rest);
    default:
      throw new DeliveryUsageError(`unknown command "${command}"`);
  }
}
