/**
 * The `wildduck` command line: start the server, manage users, show the hook pipeline.
 *
 *   wildduck start [--config FILE]
 *   wildduck user add NAME --password PW|- [--address ADDR]... [--quota BYTES] [--name TEXT]
 *   wildduck user passwd NAME --password PW|-
 *   wildduck user del NAME
 *   wildduck user list [--query TEXT]
 *   wildduck print-hooks [--config FILE]
 *   wildduck quota show|set|recalc ...             per-user quota (protocols/cli/quota.ts)
 *   wildduck filter|autoreply|forward|spam-level ...   per-user delivery rules (protocols/cli/delivery.ts)
 *   wildduck storage copy --to TARGET ...          copy the whole store elsewhere (protocols/cli/storage-copy.ts)
 *
 * User, quota and delivery-rule commands boot the app like the server (every plugin, no listeners; protocols/
 * cli-app.ts) and write through the account pipeline, so a plugin refusing a change refuses it here too (the
 * reason is printed, exit code 1, or 75 for a temporary failure). They work while the server runs.
 */
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadConfig, ConfigError, type Config } from '../../hooks/config.ts';
import { createLogger } from '../../hooks/log.ts';
import { changeUser, createUser } from '../../hooks/pipeline/index.ts';
import { VerdictError } from '../../hooks/verdict.ts';
import { findUser } from '../../storage/users.ts';
import { StorageError } from '../../storage/ports.ts';
import { AddressError, normalizeUsername } from '../../storage/addresses.ts';
import { describeRefusal, valueOf, withApp } from './boot-app.ts';
import type { CliApp } from './boot-app.ts';
import { argv, env, readStdin, setExitCode, writeErr, writeOut } from '../../hooks/runtime.ts';
import { bootApp } from '../server.ts';
import { startServer } from '../net/cluster.ts';
import { printHooks } from '../../hooks/print-hooks.ts';
import { DELIVERY_COMMANDS, DELIVERY_OPTIONS, DELIVERY_USAGE, DeliveryUsageError, deliveryCommand } from './delivery.ts';
import { DeliverySettingsError } from '../../storage/delivery-settings.ts';
import { QUOTA_OPTIONS, QUOTA_USAGE, QuotaUsageError, quotaCommand } from './quota.ts';
import { STORAGE_OPTIONS, STORAGE_USAGE, StorageUsageError, storageCommand } from './storage-copy.ts';

const USAGE = `Usage:
  wildduck start [--config FILE]
  wildduck user add NAME --password PW|- [--address ADDR]... [--quota BYTES] [--name TEXT]
  wildduck user passwd NAME --password PW|-
  wildduck user del NAME
  wildduck user list [--query TEXT]
  wildduck print-hooks [--config FILE]
${QUOTA_USAGE}
${DELIVERY_USAGE}
${STORAGE_USAGE}

--config defaults to ./wildduck.config.ts when it exists. Options can also be set with
WILDDUCK_* environment variables (see README.md). "--password -" reads the password from stdin.
`;

class UsageError extends Error {}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  password: { type: 'string', short: 'p' },
  address: { type: 'string', short: 'a', multiple: true },
  quota: { type: 'string' },
  name: { type: 'string' },
  query: { type: 'string', short: 'q' },
  help: { type: 'boolean', short: 'h' },
  ...DELIVERY_OPTIONS,
  ...QUOTA_OPTIONS,
  ...STORAGE_OPTIONS,
} as const;

async function readConfig(file: string | undefined): Promise<Config> {
  const chosen = file ?? (existsSync('wildduck.config.ts') ? 'wildduck.config.ts' : null);
  return (await loadConfig(chosen, env())).config;
}

async function password(value: string | undefined): Promise<string> {
  if (value === undefined) throw new UsageError('--password is required ("-" reads it from stdin)');
  const pw = value === '-' ? (await readStdin()).replace(/\r?\n$/, '') : value;
  if (!pw) throw new UsageError('the password is empty');
  return pw;
}

/** The user a NAME means (username or address), or StorageError NONEXISTENT. */
async function namedUser({ app }: CliApp, name: string) {
  normalizeUsername(name); // an invalid name is an input error, not a missing user
  const user = await findUser(app.storage, name);
  if (!user) throw new StorageError('NONEXISTENT', `no such user "${name}"`);
  return user;
}

async function userCommand(sub: string | undefined, args: string[], values: Record<string, unknown>, config: Config): Promise<void> {
  const name = args[0];
  switch (sub) {
    case 'add': {
      if (!name) throw new UsageError('user add needs a NAME');
      const quota = values.quota === undefined ? undefined : Number(values.quota);
      if (quota !== undefined && (!Number.isInteger(quota) || quota < 0)) throw new UsageError('--quota must be a whole number of bytes');
      const pw = await password(values.password as string | undefined);
      await withApp(config, async ({ app, ctx }) => {
        const { user, addresses } = valueOf(
          await createUser(app, ctx, {
            username: name,
            password: pw,
            name: values.name as string | undefined,
            addresses: (values.address as string[] | undefined) ?? [],
            quota: quota === undefined ? undefined : { storage: quota },
          }),
        );
        writeOut(`created user ${user.username} (id ${user.id})${addresses.length ? ' with ' + addresses.map((a) => a.address).join(', ') : ''}\n`);
      });
      return;
    }
    case 'passwd': {
      if (!name) throw new UsageError('user passwd needs a NAME');
      const pw = await password(values.password as string | undefined);
      await withApp(config, async (cli) => {
        const user = await namedUser(cli, name);
        valueOf(await changeUser(cli.app, cli.ctx, user.id, { action: 'password', password: pw }));
        writeOut(`password changed for ${name}\n`);
      });
      return;
    }
    case 'del': {
      if (!name) throw new UsageError('user del needs a NAME');
      await withApp(config, async (cli) => {
        const user = await namedUser(cli, name);
        valueOf(await changeUser(cli.app, cli.ctx, user.id, { action: 'delete' }));
        writeOut(`deleted user ${name}\n`);
      });
      return;
    }
    case 'list': {
      await withApp(config, async ({ app: { storage } }) => {
        let cursor: string | null = null;
        do {
          const page = await storage.users.list({ query: values.query as string | undefined, limit: 250, cursor });
          for (const user of page.items) {
            const addresses = await storage.users.listAddresses(user.id);
            const quota = user.quota.storage === null ? 'unlimited' : String(user.quota.storage);
            writeOut(`${user.username}\t${user.id}\t${user.storageUsed}/${quota} bytes\t${user.messagesUsed} messages\t${addresses.map((a) => a.address).join(',')}${user.disabled ? '\tdisabled' : ''}\n`);
          }
          cursor = page.next;
        } while (cursor);
      });
      return;
    }
    default:
      throw new UsageError(`unknown user command "${sub ?? ''}"`);
  }
}

export async function main(args: string[] = argv()): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    writeErr(`${(err as Error).message}\n\n${USAGE}`);
    return setExitCode(64);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') {
    writeOut(USAGE);
    return;
  }
  if (!command) {
    writeErr(`wildduck: no command given\n\n${USAGE}`); // a usage error (EX_USAGE), so scripts notice
    return setExitCode(64);
  }
  try {
    const config = await readConfig(values.config);
    const log = createLogger({ level: config.log.level, format: config.log.format });
    switch (command) {
      case 'start':
        return await startServer(config, log);
      case 'user':
        return await userCommand(rest[0], rest.slice(1), values, config);
      case 'quota':
        return await withApp(config, (cli) => quotaCommand(cli, rest, values, writeOut));
      case 'storage':
        return setExitCode(await storageCommand(config, rest, values));
      case 'print-hooks': {
        const app = await bootApp(config, createLogger({ level: 'warn', format: config.log.format }));
        try {
          writeOut(printHooks(app));
        } finally {
          await app.close();
        }
        return;
      }
      default:
        if (DELIVERY_COMMANDS.has(command)) return await withApp(config, (cli) => deliveryCommand(cli, command, rest, values));
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof DeliveryUsageError || err instanceof QuotaUsageError || err instanceof StorageUsageError) {
      writeErr(`${err.message}\n\n${USAGE}`);
      return setExitCode(64);
    }
    if (err instanceof VerdictError) {
      const refusal = describeRefusal(err.verdict);
      writeErr(refusal.line);
      return setExitCode(refusal.exitCode);
    }
    if (err instanceof ConfigError || err instanceof StorageError || err instanceof AddressError || err instanceof DeliverySettingsError) {
      writeErr(`wildduck: ${err.message}\n`);
      return setExitCode(1);
    }
    writeErr(`wildduck: ${(err as Error).stack ?? String(err)}\n`);
    return setExitCode(1);
  }
}

const entry = (globalThis as { process?: { argv?: string[] } }).process?.argv?.[1];
if ((import.meta as { main?: boolean }).main || (entry && import.meta.url === pathToFileURL(entry).href)) {
  await main();
}
