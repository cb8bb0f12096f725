/**
 * The plugin host. At boot it resolves `config.plugins` (built-in names, `[name, options]`, or plugin objects),
 * validates options with each built-in's zod schema, checks names and dependencies, appends the storage plugin
 * (always last, it commits at stage COMMIT), and calls every plugin's `apply()` in order with a tap-only view
 * of the hooks. Anything wrong fails the boot with a message naming the config entry. On shutdown, `close()`
 * runs in reverse order.
 */
import type { ZodType } from 'zod';
import type { Config, PluginEntry } from './config.ts';
import type { Logger } from './log.ts';
import type { Hooks } from './tree.ts';
import { createTapView } from './view.ts';
import type { TapOnlyHooks, TapView } from './view.ts';
import type { StorageReader } from './storage-reader.ts';
import type { HookContext } from './context.ts';
import type { CreateMailboxInput, MailboxRecord, StoreInput, StoreResult } from './types.ts';
import { fail, tempfail } from './verdict.ts';
import type { OperationResult } from './verdict.ts';

/**
 * Operations a plugin may start itself (Sent autosave storing a copy, an archiver): each runs the whole
 * pipeline — every plugin's rules (quota, ...), then the storage plugin's commit — exactly as for a client.
 * Call them while serving (from a tap), not in apply(); mind loops (storing from `message.afterStore`).
 */
export interface PluginPipeline {
  storeMessage(ctx: HookContext, input: StoreInput): Promise<OperationResult<StoreResult>>;
  /** E.g. a shared folder for every new user, from `account.afterUser` (action 'create'). */
  createMailbox(ctx: HookContext, input: CreateMailboxInput): Promise<OperationResult<MailboxRecord>>;
}

/** What `apply()` receives. Hooks can be tapped, never run; storage can be read, never written (but see `pipeline`). */
export interface PluginApi {
  /** The plugin's own name (taps are named after it). */
  readonly name: string;
  readonly hooks: TapOnlyHooks;
  readonly storage: StorageReader;
  readonly config: Config;
  /** Child logger bound to `{ plugin: name }`. */
  readonly log: Logger;
  /** Start a write operation through the full pipeline. */
  readonly pipeline: PluginPipeline;
}

export interface Plugin {
  /** Stable, unique name: labels taps in logs and print-hooks, and is what `dependencies` refer to. */
  readonly name: string;
  /** Names of plugins that must be loaded too ("storage" always is). */
  readonly dependencies?: readonly string[];
  /** Taps hooks. Runs once at boot; keep per-connection state on the context, never on the instance. */
  apply(api: PluginApi): void | Promise<void>;
  /** Releases resources on shutdown; called in reverse load order. */
  close?(): void | Promise<void>;
}

/** How a built-in plugin is made from config: options validated by `optionsSchema` over `defaults`. */
export interface PluginFactory<O = any> {
  readonly description?: string;
  /** Validates `{ ...defaults, ...options }` at boot. Without a schema, the plugin takes no options. */
  readonly optionsSchema?: ZodType<O>;
  readonly defaults?: Partial<O>;
  create(options: O): Plugin;
}

/** Built-in plugins by name (plugins/index.ts). */
export type PluginRegistry = Readonly<Record<string, PluginFactory>>;

/** Typed identity helper for writing a factory. */
export function definePlugin<O>(factory: PluginFactory<O>): PluginFactory<O> {
  return factory;
}

export class PluginError extends Error {
  /** `plugins[1] (quota).limit`, or `plugins[1]`, or the plugin name for the storage plugin. */
  readonly path: string;
  constructor(path: string, message: string, cause?: unknown) {
    super(`${path}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'PluginError';
    this.path = path;
  }
}

export interface LoadedPlugin {
  readonly name: string;
  readonly plugin: Plugin;
  /** Index in config.plugins; null for the storage plugin the host adds. */
  readonly index: number | null;
  /** builtin / object: from config.plugins; default: loaded by default (not named in config); host: always loaded. */
  readonly origin: 'builtin' | 'object' | 'default' | 'host';
}

export interface PluginHost {
  /** In load (apply) order; the storage plugin is last. */
  readonly plugins: readonly LoadedPlugin[];
  /** Calls every plugin's close() in reverse order; failures are logged, the rest still close. */
  close(): Promise<void>;
}

export interface LoadPluginsOptions {
  hooks: Hooks;
  config: Config;
  log: Logger;
  storage: StorageReader;
  registry: PluginRegistry;
  /** What `api.pipeline` runs (protocols/app.ts binds the pipeline functions); without it, calls fail UNAVAILABLE. */
  pipeline?: PluginPipeline;
  /**
   * Plugins loaded by default, after the configured ones: a config entry of the same name replaces the default
   * (`'quota'` or `['quota', options]` for the built-in with options, a plugin object of your own), and
   * `[name, false]` switches it off.
   */
  defaults?: readonly Plugin[];
  /** Plugins the host always loads after the configured ones (the storage plugin). */
  always?: readonly Plugin[];
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

function validateOptions(where: string, factory: PluginFactory, options: Record<string, unknown> | undefined): unknown {
  if (!factory.optionsSchema) {
    if (options && Object.keys(options).length > 0) throw new PluginError(where, 'this plugin takes no options');
    return undefined;
  }
  const input = { ...(factory.defaults ?? {}), ...(options ?? {}) };
  const result = factory.optionsSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new PluginError(`${where}${formatPath(issue.path)}`, issue.message);
  }
  return result.data;
}

function checkPlugin(where: string, value: unknown): Plugin {
  const p = value as Partial<Plugin> | null;
  if (typeof p !== 'object' || p === null) throw new PluginError(where, 'expected a plugin object');
  if (typeof p.name !== 'string' || p.name.trim() === '') throw new PluginError(where, 'plugin has no name');
  if (typeof p.apply !== 'function') throw new PluginError(where, `plugin "${p.name}" has no apply() method`);
  if (p.dependencies !== undefined && (!Array.isArray(p.dependencies) || !p.dependencies.every((d) => typeof d === 'string'))) {
    throw new PluginError(where, `plugin "${p.name}": dependencies must be a list of plugin names`);
  }
  if (p.close !== undefined && typeof p.close !== 'function') throw new PluginError(where, `plugin "${p.name}": close must be a function`);
  return p as Plugin;
}

function resolveEntry(entry: PluginEntry, index: number, registry: PluginRegistry, reserved: ReadonlySet<string>): LoadedPlugin {
  const at = `plugins[${index}]`;
  if (typeof entry === 'string' || Array.isArray(entry)) {
    const [name, options] = typeof entry === 'string' ? [entry, undefined] : (entry as [string, Record<string, unknown>]);
    if (reserved.has(name)) throw new PluginError(at, `"${name}" is loaded by the server itself; remove it from plugins`);
    const factory = Object.prototype.hasOwnProperty.call(registry, name) ? registry[name] : undefined;
    if (!factory) {
      const known = Object.keys(registry);
      throw new PluginError(at, `unknown plugin "${name}"; built-in plugins: ${known.length ? known.join(', ') : '(none)'}`);
    }
    const where = `${at} (${name})`;
    const validated = validateOptions(where, factory, options);
    let plugin: Plugin;
    try {
      plugin = checkPlugin(where, factory.create(validated));
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw new PluginError(where, `could not create the plugin: ${(err as Error)?.message ?? String(err)}`, err);
    }
    if (plugin.name !== name) throw new PluginError(where, `factory created a plugin named "${plugin.name}"`);
    return { name, plugin, index, origin: 'builtin' };
  }
  const plugin = checkPlugin(at, entry);
  if (reserved.has(plugin.name)) throw new PluginError(at, `the name "${plugin.name}" is reserved for the server's own plugin`);
  return { name: plugin.name, plugin, index, origin: 'object' };
}

function label(p: LoadedPlugin): string {
  return p.index === null ? `plugin "${p.name}"` : `plugins[${p.index}] (${p.name})`;
}

async function closeAll(loaded: readonly LoadedPlugin[], log: Logger): Promise<void> {
  for (const p of [...loaded].reverse()) {
    if (!p.plugin.close) continue;
    try {
      await p.plugin.close();
    } catch (err) {
      log.error('plugin close failed', { plugin: p.name, err });
    }
  }
}

/** Resolves, checks and applies plugins. Throws PluginError (nothing applied stays open) on any problem. */
export async function loadPlugins(options: LoadPluginsOptions): Promise<PluginHost> {
  const { hooks, config, log, storage, registry } = options;
  const always = options.always ?? [];
  const unavailable = async () => fail<never>(tempfail('UNAVAILABLE', 'No pipeline'));
  const pipeline: PluginPipeline = options.pipeline ?? { storeMessage: unavailable, createMailbox: unavailable };
  const reserved = new Set(always.map((p) => p.name));

  const defaults = options.defaults ?? [];
  const switchedOff = new Set<string>();
  const resolved: LoadedPlugin[] = [];
  config.plugins.forEach((entry, index) => {
    if (Array.isArray(entry) && entry[1] === false) {
      const name = entry[0] as string;
      if (!defaults.some((p) => p.name === name)) {
        throw new PluginError(`plugins[${index}]`, `only plugins loaded by default can be switched off with [name, false]; "${name}" is not one (${defaults.map((p) => p.name).join(', ') || 'none'})`);
      }
      switchedOff.add(name);
      return;
    }
    resolved.push(resolveEntry(entry, index, registry, reserved));
  });
  for (const plugin of defaults) {
    if (switchedOff.has(plugin.name) || resolved.some((p) => p.name === plugin.name)) continue;
    resolved.push({ name: plugin.name, plugin: checkPlugin(`plugin "${plugin.name}"`, plugin), index: null, origin: 'default' });
  }
  for (const plugin of always) resolved.push({ name: plugin.name, plugin: checkPlugin(`plugin "${plugin.name}"`, plugin), index: null, origin: 'host' });

  const seen = new Map<string, LoadedPlugin>();
  for (const p of resolved) {
    const first = seen.get(p.name);
    if (first) throw new PluginError(label(p), `plugin "${p.name}" is already loaded by ${label(first)}`);
    seen.set(p.name, p);
  }
  for (const p of resolved) {
    for (const dep of p.plugin.dependencies ?? []) {
      if (!seen.has(dep)) throw new PluginError(label(p), `depends on plugin "${dep}", which is not loaded; add it to plugins`);
    }
  }

  const applied: LoadedPlugin[] = [];
  const views: TapView[] = [];
  try {
    for (const p of resolved) {
      const view = createTapView(hooks, p.name);
      views.push(view);
      const api: PluginApi = Object.freeze({ name: p.name, hooks: view.hooks, storage, config, log: log.child({ plugin: p.name }), pipeline });
      try {
        await p.plugin.apply(api);
      } catch (err) {
        throw new PluginError(label(p), `apply() failed: ${(err as Error)?.message ?? String(err)}`, err);
      }
      applied.push(p);
    }
  } catch (err) {
    await closeAll(applied, log);
    throw err;
  } finally {
    for (const view of views) view.seal();
  }

  let closed = false;
  return Object.freeze({
    plugins: Object.freeze([...applied]),
    close: async () => {
      if (closed) return;
      closed = true;
      await closeAll(applied, log);
    },
  });
}
