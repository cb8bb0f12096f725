/**
 * The `wildduck` command line: start the server, manage users, show the hook pipeline.
 *
 *   wildduck start [--config FILE]
 *   wildduck user add NAME --password PW|- [--address ADDR]... [--quota BYTES] [--name TEXT]
 *   wildduck user passwd NAME --password PW|-
 *   wildduck user del NAME
 *   wildduck user list [--query TEXT]
 *   wildduck print-hooks [--config FILE]
 *   wildduck quota show|set|recalc ...             per-user quota (protocols/cli-quota.ts)
 *   wildduck filter|autoreply|forward|spam-level ...   per-user delivery rules (protocols/cli-delivery.ts)
 *   wildduck storage copy --to TARGET ...          copy the whole store elsewhere (protocols/cli-storage-copy.ts)
 *
 * User commands open the same storage as the server and work while it runs.
 */
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadConfig, ConfigError, type Config } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { openStorage } from '../storage/open.ts';
import { createUser, deleteUser, setPassword } from '../storage/users.ts';
import { StorageError, type StoragePorts } from '../storage/ports.ts';
import { AddressError } from '../storage/addresses.ts';
import { argv, env, readStdin, setExitCode, writeErr, writeOut } from './runtime.ts';
import { bootApp } from './server.ts';
import { startServer } from './cluster.ts';
import { printHooks } from '../hooks/print-hooks.ts';
import { DELIVERY_COMMANDS, DELIVERY_OPTIONS, DELIVERY_USAGE, DeliveryUsageError, deliveryCommand } from './cli-delivery.ts';
import { DeliverySettingsError } from '../storage/delivery-settings.ts';
import { QUOTA_OPTIONS, QUOTA_USAGE, QuotaUsageError, quotaCommand } from './cli-quota.ts';
import { STORAGE_OPTIONS, STORAGE_USAGE, StorageUsageError, storageCommand } from './cli-storage-copy.ts';

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

async function withStorage<T>(config: Config, fn: (storage: StoragePorts) => Promise<T>): Promise<T> {
  const storage = await openStorage(config);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

async function userCommand(sub: string | undefined, args: string[], values: Record<string, unknown>, config: Config): Promise<void> {
  const name = args[0];
  switch (sub) {
    case 'add': {
      if (!name) throw new UsageError('user add needs a NAME');
      const quota = values.quota === undefined ? undefined : Number(values.quota);
      if (quota !== undefined && (!Number.isInteger(quota) || quota < 0)) throw new UsageError('--quota must be a whole number of bytes');
      const pw = await password(values.password as string | undefined);
      await withStorage(config, async (storage) => {
        const { user, addresses } = await createUser(storage, config, {
          username: name,
          password: pw,
          name: values.name as string | undefined,
          addresses: (values.address as string[] | undefined) ?? [],
          quota: quota === undefined ? undefined : { storage: quota },
        });
        writeOut(`created user ${user.username} (id ${user.id})${addresses.length ? ' with ' + addresses.map((a) => a.address).join(', ') : ''}\n`);
      });
      return;
    }
    case 'passwd': {
      if (!name) throw new UsageError('user passwd needs a NAME');
      const pw = await password(values.password as string | undefined);
      await withStorage(config, async (storage) => {
        await setPassword(storage, name, pw);
        writeOut(`password changed for ${name}\n`);
      });
      return;
    }
    case 'del': {
      if (!name) throw new UsageError('user del needs a NAME');
      await withStorage(config, async (storage) => {
        await deleteUser(storage, name);
        writeOut(`deleted user ${name}\n`);
      });
      return;
    }
    case 'list': {
      await withStorage(config, async (storage) => {
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
        return await withStorage(config, (storage) => quotaCommand(storage, config, rest, values, writeOut));
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
        if (DELIVERY_COMMANDS.has(command)) return await withStorage(config, (storage) => deliveryCommand(storage, command, rest, values));
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof DeliveryUsageError || err instanceof QuotaUsageError || err instanceof StorageUsageError) {
      writeErr(`${err.message}\n\n${USAGE}`);
      return setExitCode(64);
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
