/**
 * The tap-only view of the hook tree that plugins receive. It mirrors the tree's shape, but every hook offers
 * only `tap` / `tapPromise` / `tapAsync`; `call`, `callAsync` and `promise` do not exist on it. Reading a name
 * that is not a hook throws at once (so a typo fails at boot, naming the plugin and the known hooks), and
 * after boot (`seal()`), tapping throws too: hooks are compiled per tap, so tap once at boot, never per
 * connection.
 */
import type { HookMap } from 'tapable';
import { catalogue } from './tree.ts';
import type { AnyHook, CatalogueEntry, Hooks } from './tree.ts';
import type { TapMeta } from './interceptor.ts';

export interface PluginTapOptions {
  /** Lower runs earlier; use the constants in hooks/stages.ts. Default: DEFAULT (0). */
  stage?: number;
  /** Run before the taps of these plugins (within the same stage). */
  before?: string | string[];
  /** A label shown by print-hooks when a plugin taps a hook more than once. */
  label?: string;
}

type Args<H> = H extends { promise(...args: infer A): Promise<unknown> } ? A : never;
type Result<H> = H extends { promise(...args: never[]): Promise<infer R> } ? R : never;

/** One hook as a plugin sees it. A string option is a label; the tap is always named after the plugin. */
export interface TapOnlyHook<A extends unknown[], R> {
  readonly name: string;
  tap(options: PluginTapOptions | string, fn: (...args: A) => R): void;
  tapPromise(options: PluginTapOptions | string, fn: (...args: A) => Promise<R>): void;
  tapAsync(options: PluginTapOptions | string, fn: (...args: [...A, (err?: Error | null, result?: R) => void]) => void): void;
}

export interface TapOnlyHookMap<H> {
  readonly name: string;
  /** The hook for one key (a verb, a route, a protocol), created on first use. */
  for(key: string): TapOnlyHook<Args<H>, Result<H>>;
}

export type TapOnly<T> = {
  readonly [K in keyof T]: T[K] extends HookMap<infer H>
    ? TapOnlyHookMap<H>
    : T[K] extends { promise(...args: never[]): Promise<unknown> }
      ? TapOnlyHook<Args<T[K]>, Result<T[K]>>
      : TapOnly<T[K]>;
};

export type TapOnlyHooks = TapOnly<Hooks>;

export interface TapView {
  readonly hooks: TapOnlyHooks;
  /** Forbid further taps (called by the host once every plugin is applied). */
  seal(): void;
}

// Property names that generic code (await, JSON, inspection) probes; reading them must not throw.
const PROBES: ReadonlySet<string> = new Set(['then', 'toJSON', 'constructor', 'inspect', 'asymmetricMatch', '$$typeof', 'nodeType']);

function strict<T extends object>(target: T, describe: (prop: string) => string): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (typeof prop === 'symbol' || Object.prototype.hasOwnProperty.call(t, prop)) return Reflect.get(t, prop, receiver);
      if (PROBES.has(prop)) return undefined;
      throw new Error(describe(prop));
    },
    set(_t, prop) {
      throw new Error(`hooks are read-only: cannot assign "${String(prop)}"`);
    },
    defineProperty(_t, prop) {
      throw new Error(`hooks are read-only: cannot define "${String(prop)}"`);
    },
    deleteProperty(_t, prop) {
      throw new Error(`hooks are read-only: cannot delete "${String(prop)}"`);
    },
  });
}

/** Builds the tap-only view of `hooks` for the plugin named `plugin`. */
export function createTapView(hooks: Hooks, plugin: string): TapView {
  let sealed = false;
  const entries = catalogue(hooks);
  const hookNames = entries.map((e) => (e.type === 'map' ? `${e.name}.for(key)` : e.name));

  const normalize = (options: PluginTapOptions | string, hookName: string): Record<string, unknown> & TapMeta => {
    if (sealed) throw new Error(`plugin "${plugin}" tapped ${hookName} after boot; tap in apply() only`);
    if (typeof options === 'string') return { name: plugin, plugin, label: options === plugin ? undefined : options };
    if (typeof options !== 'object' || options === null) throw new Error(`plugin "${plugin}": invalid tap options for ${hookName}`);
    const out: Record<string, unknown> & TapMeta = { name: plugin, plugin };
    if (options.stage !== undefined) {
      if (typeof options.stage !== 'number' || !Number.isFinite(options.stage)) throw new Error(`plugin "${plugin}": stage for ${hookName} must be a number`);
      out.stage = options.stage;
    }
    if (options.before !== undefined) out.before = options.before;
    if (options.label !== undefined) out.label = options.label;
    return out;
  };

  const hookView = (hook: AnyHook, hookName: string): object => {
    const view = {
      name: hookName,
      tap: (options: PluginTapOptions | string, fn: (...args: any[]) => any) => hook.tap(normalize(options, hookName) as never, fn),
      tapPromise: (options: PluginTapOptions | string, fn: (...args: any[]) => Promise<any>) => hook.tapPromise(normalize(options, hookName) as never, fn),
      tapAsync: (options: PluginTapOptions | string, fn: (...args: any[]) => void) => hook.tapAsync(normalize(options, hookName) as never, fn),
    };
    return strict(view, (prop) =>
      ['call', 'callAsync', 'promise'].includes(prop)
        ? `plugin "${plugin}": ${hookName} is tap-only here; only pipeline functions in hooks/ run hooks`
        : `plugin "${plugin}": ${hookName} has no "${prop}" (use tap, tapPromise or tapAsync)`,
    );
  };

  const mapView = (entry: Extract<CatalogueEntry, { type: 'map' }>): object =>
    strict(
      {
        name: entry.name,
        for: (key: string) => {
          if (typeof key !== 'string' || key === '') throw new Error(`plugin "${plugin}": ${entry.name}.for() needs a non-empty string key`);
          const k = entry.normalizeKey(key);
          return hookView(entry.map.for(k) as AnyHook, `${entry.name}[${k}]`);
        },
      },
      (prop) => `plugin "${plugin}": ${entry.name} is a hook map; use ${entry.name}.for(key), not .${prop}`,
    );

  // Rebuild the tree's shape from the catalogue's dotted names.
  const namespaces = new Set<object>();
  const namespace = (): Record<string, unknown> => {
    const ns: Record<string, unknown> = {};
    namespaces.add(ns);
    return ns;
  };
  const root = namespace();
  for (const entry of entries) {
    const parts = entry.name.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= namespace()) as Record<string, unknown>;
    node[parts[parts.length - 1]!] = entry.type === 'map' ? mapView(entry) : hookView(entry.hook, entry.name);
  }
  const unknownHook = (path: string) => (prop: string) =>
    `plugin "${plugin}" used unknown hook "${path}${prop}"; known hooks: ${hookNames.join(', ')}`;
  const wrap = (node: Record<string, unknown>, path: string): object => {
    for (const [key, child] of Object.entries(node)) {
      if (namespaces.has(child as object)) node[key] = wrap(child as Record<string, unknown>, `${path}${key}.`);
    }
    return strict(node, unknownHook(path));
  };
  const view = wrap(root, '') as TapOnlyHooks;
  return {
    hooks: view,
    seal: () => {
      sealed = true;
    },
  };
}
