/**
 * The hook tree: one typed, frozen object holding every hook of the server, built with tapable.
 *
 * Hook type follows what the result means:
 * - series (AsyncSeriesHook): every tap runs; used for `after*` and `session.*` (errors logged, never thrown).
 * - bail (AsyncSeriesBailHook): the first tap that returns something other than `undefined` wins. `before*`
 *   hooks return a Verdict to refuse; the `do` hooks (`message.store`, `mailbox.create`, ...) return the
 *   committed result (the storage plugin, at stage COMMIT) or a Verdict.
 * - waterfall (AsyncSeriesWaterfallHook): each tap gets the value the previous one returned
 *   (`message.prepare` over the message stream, `capabilities` over the capability list).
 *
 * Only pipeline functions (hooks/pipeline/) call `.promise()`; plugins get a tap-only view (hooks/view.ts).
 */
import { AsyncSeriesBailHook, AsyncSeriesHook, AsyncSeriesWaterfallHook, HookMap } from 'tapable';
import type { HookContext } from './context.ts';
import { createTapInterceptor } from './interceptor.ts';
import type { InterceptorOptions } from './interceptor.ts';
import { silentLogger } from './log.ts';
import type { Logger } from './log.ts';
import type { Verdict } from './verdict.ts';
import type {
  AddressChange,
  AddressRecord,
  AppPasswordChange,
  AppPasswordResult,
  AutoreplyChange,
  AutoreplyResult,
  DeliverySettings,
  FilterChange,
  FilterResult,
  SettingsChange,
  TokenChange,
  TokenResult,
  UserChange,
  AppendInput,
  AppendResult,
  AuthInfo,
  AuthInput,
  AuthSettled,
  CommandInput,
  CommandResult,
  CopyInput,
  CopyResult,
  CreateMailboxInput,
  DeleteMailboxInput,
  DeliveryRequest,
  DeliveryResult,
  DeliveryRoute,
  ExpungeInput,
  ExpungeResult,
  FlagResult,
  FlagsInput,
  MailboxRecord,
  MessageSource,
  MoveInput,
  RecipientRequest,
  RenameMailboxInput,
  StoreRequest,
  SubmitCommit,
  StoreResult,
  SubmitRequest,
  SubmitResult,
  SubmittedMessage,
  SubscribeMailboxInput,
  SubscribeResult,
  TransferInput,
  UserRecord,
} from './types.ts';

type Ctx = HookContext;

/** Bail hook whose taps return a Verdict to refuse, or nothing to let the operation continue. */
export type BeforeHook<I> = AsyncSeriesBailHook<[Ctx, I], Verdict | undefined | void>;
/** Bail hook that commits: the first tap returning a result (or a Verdict) wins. */
export type DoHook<I, R> = AsyncSeriesBailHook<[Ctx, I, ...unknown[]], R | Verdict | undefined | void>;
/** Series hook after a successful commit: every tap runs; errors are logged and swallowed. */
export type AfterHook<I, R> = AsyncSeriesHook<[Ctx, I, R]>;
export type SessionHook = AsyncSeriesHook<[Ctx]>;
/** Series hook reporting something that happened (no separate result): every tap runs; errors are logged. */
export type ReportHook<I> = AsyncSeriesHook<[Ctx, I]>;
/** Protocol command gate: return a Verdict to deny, a result to implement the command, nothing to continue. */
export type CommandHook = AsyncSeriesBailHook<[Ctx, CommandInput], CommandResult | Verdict | undefined | void>;
/** Waterfall over the capability list a protocol announces. */
export type CapabilitiesHook = AsyncSeriesWaterfallHook<[string[], Ctx]>;
export type PrepareHook = AsyncSeriesWaterfallHook<[MessageSource, Ctx, StoreRequest]>;
/** Waterfall over where a delivered copy goes (filters, spam routing, forwarding targets). */
export type RouteHook = AsyncSeriesWaterfallHook<[DeliveryRoute, Ctx, DeliveryRequest]>;

export interface Hooks {
  readonly session: {
    /** A client connected (after TLS for implicit-TLS ports). Every tap runs. */
    readonly connect: SessionHook;
    /** The connection ended, for whatever reason. Every tap runs. */
    readonly close: SessionHook;
  };
  readonly auth: {
    readonly beforeAuthenticate: BeforeHook<AuthInput>;
    /** Returns the user for valid credentials, a Verdict (AUTHENTICATIONFAILED) otherwise. */
    readonly authenticate: DoHook<AuthInput, UserRecord>;
    readonly afterAuthenticate: AfterHook<AuthInfo, UserRecord>;
    /**
     * The credentials were refused (`auth.authenticate` answered a deny verdict, e.g. AUTHENTICATIONFAILED);
     * not called for temporary failures or refusals by `beforeAuthenticate`. Every tap runs before the client
     * gets its answer: failed-login counting and the answer delay (plugins/login-limits.ts) live here.
     */
    readonly failed: AfterHook<AuthInfo, Verdict>;
    /**
     * Every login attempt, last, whatever its end (AuthSettled: ok, failed, refused by beforeAuthenticate, or a
     * temporary failure): login-limits gives back the attempt it reserved at GUARD unless the password was wrong.
     */
    readonly settled: AfterHook<AuthInfo, AuthSettled>;
  };
  readonly mailbox: {
    readonly beforeCreate: BeforeHook<CreateMailboxInput>;
    readonly create: DoHook<CreateMailboxInput, MailboxRecord>;
    readonly afterCreate: AfterHook<CreateMailboxInput, MailboxRecord>;
    readonly beforeRename: BeforeHook<RenameMailboxInput>;
    /** Returns every renamed mailbox (the mailbox and its descendants). */
    readonly rename: DoHook<RenameMailboxInput, MailboxRecord[]>;
    readonly afterRename: AfterHook<RenameMailboxInput, MailboxRecord[]>;
    readonly beforeDelete: BeforeHook<DeleteMailboxInput>;
    /** Returns the deleted mailbox. */
    readonly delete: DoHook<DeleteMailboxInput, MailboxRecord>;
    readonly afterDelete: AfterHook<DeleteMailboxInput, MailboxRecord>;
    readonly beforeSubscribe: BeforeHook<SubscribeMailboxInput>;
    readonly subscribe: DoHook<SubscribeMailboxInput, SubscribeResult>;
    readonly afterSubscribe: AfterHook<SubscribeMailboxInput, SubscribeResult>;
  };
  readonly message: {
    /** Quota, size and policy checks; the bytes are not available yet (only `declaredSize`). */
    readonly beforeStore: BeforeHook<StoreRequest>;
    /** Rewrite the message: return a new stream (or the one you got). */
    readonly prepare: PrepareHook;
    /**
     * The commit, after ingest: the storage plugin calls `storage.messages.append`. Earlier taps may refuse
     * (the exact size is known here) or answer an already stored message (`existingMessage()`).
     */
    readonly store: DoHook<AppendInput, StoreResult>;
    readonly afterStore: AfterHook<AppendInput, AppendResult>;
    readonly beforeCopy: BeforeHook<CopyInput>;
    readonly copy: DoHook<CopyInput, CopyResult>;
    readonly afterCopy: AfterHook<CopyInput, CopyResult>;
    readonly beforeMove: BeforeHook<MoveInput>;
    readonly move: DoHook<MoveInput, CopyResult>;
    readonly afterMove: AfterHook<MoveInput, CopyResult>;
    readonly beforeExpunge: BeforeHook<ExpungeInput>;
    readonly expunge: DoHook<ExpungeInput, ExpungeResult>;
    readonly afterExpunge: AfterHook<ExpungeInput, ExpungeResult>;
    readonly beforeFlags: BeforeHook<FlagsInput>;
    readonly flags: DoHook<FlagsInput, FlagResult>;
    readonly afterFlags: AfterHook<FlagsInput, FlagResult>;
  };
  readonly submission: {
    readonly beforeSubmit: BeforeHook<SubmitRequest>;
    /** Accepts the message for delivery: plugins/submission.ts (the relay, loaded by default) or a queue plugin. */
    readonly submit: DoHook<SubmitCommit, SubmitResult>;
    /** After the message was accepted: the Sent copy (plugins/sent-autosave.ts), notifications. */
    readonly afterSubmit: AfterHook<SubmittedMessage, SubmitResult>;
  };
  /** Message bytes going out to IMAP and POP3 clients (daily download limits: plugins/quota.ts). */
  readonly transfer: {
    /** Before an IMAP FETCH response with body sections or a POP3 RETR/TOP is sent: return a Verdict to refuse. */
    readonly beforeDownload: BeforeHook<TransferInput>;
    /** After those bytes were sent. Every tap runs. */
    readonly afterDownload: ReportHook<TransferInput>;
  };
  /** Mail arriving for local users (LMTP, HTTP): run per recipient by `deliverMessage`. */
  readonly delivery: {
    /** At RCPT time, before any bytes: return a Verdict to refuse the recipient. */
    readonly beforeRecipient: BeforeHook<RecipientRequest>;
    /** Per recipient once the message is in (headers, size, Message-ID known): a Verdict refuses this copy. */
    readonly beforeDeliver: BeforeHook<DeliveryRequest>;
    /** Decides mailbox, flags and actions: filters, spam routing and forwarding targets are taps here. */
    readonly route: RouteHook;
    /** After the copy is durable (or discarded / a duplicate): forwarding, autoreply, notifications. */
    readonly afterDeliver: AfterHook<DeliveryRequest, DeliveryResult>;
  };
  /**
   * Account changes from every front end (HTTP API, CLI): one before/do/after triple per record kind, the change's
   * `action` saying what happens ('create', 'update', 'delete', ...; hooks/types.ts). `before*` returns a Verdict to
   * refuse, the do-hook is the storage plugin's commit, `after*` observes (secrets removed).
   */
  readonly account: {
    readonly beforeUser: BeforeHook<UserChange>;
    /** Returns the user as stored (for `delete`, as it was). */
    readonly user: DoHook<UserChange, UserRecord>;
    readonly afterUser: AfterHook<UserChange, UserRecord>;
    readonly beforeAddress: BeforeHook<AddressChange>;
    /** Returns the address as stored (for `delete`, as it was). */
    readonly address: DoHook<AddressChange, AddressRecord>;
    readonly afterAddress: AfterHook<AddressChange, AddressRecord>;
    readonly beforeAppPassword: BeforeHook<AppPasswordChange>;
    readonly appPassword: DoHook<AppPasswordChange, AppPasswordResult>;
    readonly afterAppPassword: AfterHook<AppPasswordChange, AppPasswordResult>;
    readonly beforeToken: BeforeHook<TokenChange>;
    readonly token: DoHook<TokenChange, TokenResult>;
    readonly afterToken: AfterHook<TokenChange, TokenResult>;
    readonly beforeFilter: BeforeHook<FilterChange>;
    readonly filter: DoHook<FilterChange, FilterResult>;
    readonly afterFilter: AfterHook<FilterChange, FilterResult>;
    readonly beforeAutoreply: BeforeHook<AutoreplyChange>;
    readonly autoreply: DoHook<AutoreplyChange, AutoreplyResult>;
    readonly afterAutoreply: AfterHook<AutoreplyChange, AutoreplyResult>;
    /** Forwarding targets and the spam level. */
    readonly beforeSettings: BeforeHook<SettingsChange>;
    readonly settings: DoHook<SettingsChange, DeliverySettings>;
    readonly afterSettings: AfterHook<SettingsChange, DeliverySettings>;
  };
  /** Keyed by upper-case verb: `hooks.imap.command.for('APPEND')`. */
  readonly imap: { readonly command: HookMap<CommandHook> };
  readonly pop3: { readonly command: HookMap<CommandHook> };
  readonly lmtp: { readonly command: HookMap<CommandHook> };
  /** Keyed by route, e.g. `'POST /users/:user/mailboxes'`. */
  readonly http: { readonly request: HookMap<CommandHook> };
  /** Keyed by protocol ('imap', 'pop3', 'lmtp'): a waterfall over the announced capability list. */
  readonly capabilities: HookMap<CapabilitiesHook>;
}

export type HookKind = 'series' | 'bail' | 'waterfall';

/** The common surface of every hook we create. */
export type AnyHook = AsyncSeriesHook<any> | AsyncSeriesBailHook<any, any> | AsyncSeriesWaterfallHook<any>;

export interface HookEntry {
  readonly type: 'hook';
  readonly name: string;
  readonly kind: HookKind;
  readonly hook: AnyHook;
}

export interface HookMapEntry {
  readonly type: 'map';
  readonly name: string;
  readonly kind: HookKind;
  readonly map: HookMap<AnyHook>;
  /** How keys are normalized (upper case for command verbs). */
  readonly normalizeKey: (key: string) => string;
  /** Hooks created so far, by key. */
  readonly hooks: ReadonlyMap<string, AnyHook>;
}

export type CatalogueEntry = HookEntry | HookMapEntry;

const catalogues = new WeakMap<object, CatalogueEntry[]>();

/** Every hook and hook map of a tree, in declaration order. */
export function catalogue(hooks: Hooks): readonly CatalogueEntry[] {
  const entries = catalogues.get(hooks);
  if (!entries) throw new Error('not a hook tree created by createHooks()');
  return entries;
}

export interface HookOptions {
  /** Per-tap timeout (config.hooks.timeoutMs). Default 10 s. */
  timeoutMs?: number;
  /** Debug log per tap call (config.hooks.trace). */
  trace?: boolean;
  /** Fallback logger when a hook's arguments carry no context. */
  log?: Logger;
}

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (child && typeof child === 'object' && Object.getPrototypeOf(child) === Object.prototype) deepFreeze(child);
  }
  return Object.freeze(value);
}

export function createHooks(options: HookOptions = {}): Hooks {
  const io: InterceptorOptions = { timeoutMs: options.timeoutMs ?? 10_000, trace: options.trace ?? false, log: options.log ?? silentLogger };
  const entries: CatalogueEntry[] = [];

  const build = (kind: HookKind, name: string, args: string[], swallowErrors: boolean): AnyHook => {
    const names = args as never;
    const hook: AnyHook =
      kind === 'series' ? new AsyncSeriesHook<any>(names, name) : kind === 'bail' ? new AsyncSeriesBailHook<any, any>(names, name) : new AsyncSeriesWaterfallHook<any>(names, name);
    hook.intercept(createTapInterceptor({ name, swallowErrors }, io));
    return hook;
  };
  const hook = <H>(kind: HookKind, name: string, args: string[], swallowErrors = false): H => {
    const h = build(kind, name, args, swallowErrors);
    entries.push({ type: 'hook', name, kind, hook: h });
    return h as H;
  };
  const before = <I>(name: string) => hook<BeforeHook<I>>('bail', name, ['ctx', 'input']);
  const commit = <I, R>(name: string) => hook<DoHook<I, R>>('bail', name, ['ctx', 'input']);
  const after = <I, R>(name: string) => hook<AfterHook<I, R>>('series', name, ['ctx', 'input', 'result'], true);
  const map = <H>(kind: HookKind, name: string, args: string[], normalizeKey: (key: string) => string): HookMap<H> => {
    const created = new Map<string, AnyHook>();
    const hookMap = new HookMap<AnyHook>((key: string) => {
      const h = build(kind, `${name}[${key}]`, args, false);
      created.set(key, h);
      return h;
    }, name);
    entries.push({ type: 'map', name, kind, map: hookMap, normalizeKey, hooks: created });
    return hookMap as unknown as HookMap<H>;
  };
  const upper = (key: string) => key.toUpperCase();
  const same = (key: string) => key;

  const tree: Hooks = {
    session: {
      connect: hook<SessionHook>('series', 'session.connect', ['ctx'], true),
      close: hook<SessionHook>('series', 'session.close', ['ctx'], true),
    },
    auth: {
      beforeAuthenticate: before('auth.beforeAuthenticate'),
      authenticate: commit('auth.authenticate'),
      afterAuthenticate: after('auth.afterAuthenticate'),
      failed: after('auth.failed'),
      settled: after('auth.settled'),
    },
    mailbox: {
      beforeCreate: before('mailbox.beforeCreate'),
      create: commit('mailbox.create'),
      afterCreate: after('mailbox.afterCreate'),
      beforeRename: before('mailbox.beforeRename'),
      rename: commit('mailbox.rename'),
      afterRename: after('mailbox.afterRename'),
      beforeDelete: before('mailbox.beforeDelete'),
      delete: commit('mailbox.delete'),
      afterDelete: after('mailbox.afterDelete'),
      beforeSubscribe: before('mailbox.beforeSubscribe'),
      subscribe: commit('mailbox.subscribe'),
      afterSubscribe: after('mailbox.afterSubscribe'),
    },
    message: {
      beforeStore: before('message.beforeStore'),
      prepare: hook<PrepareHook>('waterfall', 'message.prepare', ['source', 'ctx', 'input']),
      store: commit('message.store'),
      afterStore: after('message.afterStore'),
      beforeCopy: before('message.beforeCopy'),
      copy: commit('message.copy'),
      afterCopy: after('message.afterCopy'),
      beforeMove: before('message.beforeMove'),
      move: commit('message.move'),
      afterMove: after('message.afterMove'),
      beforeExpunge: before('message.beforeExpunge'),
      expunge: commit('message.expunge'),
      afterExpunge: after('message.afterExpunge'),
      beforeFlags: before('message.beforeFlags'),
      flags: commit('message.flags'),
      afterFlags: after('message.afterFlags'),
    },
    submission: {
      beforeSubmit: before('submission.beforeSubmit'),
      submit: commit('submission.submit'),
      afterSubmit: after('submission.afterSubmit'),
    },
    transfer: {
      beforeDownload: before('transfer.beforeDownload'),
      afterDownload: hook<ReportHook<TransferInput>>('series', 'transfer.afterDownload', ['ctx', 'input'], true),
    },
    delivery: {
      beforeRecipient: before('delivery.beforeRecipient'),
      beforeDeliver: before('delivery.beforeDeliver'),
      route: hook<RouteHook>('waterfall', 'delivery.route', ['route', 'ctx', 'input']),
      afterDeliver: after('delivery.afterDeliver'),
    },
    account: {
      beforeUser: before('account.beforeUser'),
      user: commit('account.user'),
      afterUser: after('account.afterUser'),
      beforeAddress: before('account.beforeAddress'),
      address: commit('account.address'),
      afterAddress: after('account.afterAddress'),
      beforeAppPassword: before('account.beforeAppPassword'),
      appPassword: commit('account.appPassword'),
      afterAppPassword: after('account.afterAppPassword'),
      beforeToken: before('account.beforeToken'),
      token: commit('account.token'),
      afterToken: after('account.afterToken'),
      beforeFilter: before('account.beforeFilter'),
      filter: commit('account.filter'),
      afterFilter: after('account.afterFilter'),
      beforeAutoreply: before('account.beforeAutoreply'),
      autoreply: commit('account.autoreply'),
      afterAutoreply: after('account.afterAutoreply'),
      beforeSettings: before('account.beforeSettings'),
      settings: commit('account.settings'),
      afterSettings: after('account.afterSettings'),
    },
    imap: { command: map<CommandHook>('bail', 'imap.command', ['ctx', 'input'], upper) },
    pop3: { command: map<CommandHook>('bail', 'pop3.command', ['ctx', 'input'], upper) },
    lmtp: { command: map<CommandHook>('bail', 'lmtp.command', ['ctx', 'input'], upper) },
    http: { request: map<CommandHook>('bail', 'http.request', ['ctx', 'input'], same) },
    capabilities: map<CapabilitiesHook>('waterfall', 'capabilities', ['capabilities', 'ctx'], (key) => key.toLowerCase()),
  };
  deepFreeze(tree);
  catalogues.set(tree, entries);
  return tree;
}
