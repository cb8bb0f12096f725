/**
 * Inputs and results of the domain hooks. Pipeline functions (hooks/pipeline/) take these inputs; the storage
 * plugin turns them into StoragePorts calls.
 */
import type {
  AddressRecord,
  AppendInput,
  AppendResult,
  CopyResult,
  Flag,
  FlagResult,
  FlagUpdate,
  Id,
  MailboxRecord,
  QuotaLimits,
  SpecialUse,
  UserRecord,
} from '../storage/ports.ts';
import type { AutoreplyData, DeliverySettings, FilterData } from '../storage/delivery-settings.ts';
import type { AspScope } from '../storage/app-passwords.ts';
import type { HeaderField } from '../storage/mime/headers.ts';
import type { Verdict } from './verdict.ts';

export type { AddressRecord, AppendInput, AppendResult, CopyResult, FlagResult, MailboxRecord, UserRecord };

/** A message as a stream of bytes. `message.prepare` taps return a new one to rewrite the message. */
export type MessageSource = AsyncIterable<Uint8Array>;

// --- auth -----------------------------------------------------------------------------------------------

export interface AuthInput {
  readonly username: string;
  readonly password: string;
  /** SASL mechanism or protocol command: 'PLAIN', 'LOGIN', 'USER', 'BASIC', ... */
  readonly method: string;
  /**
   * What the login is for: 'master' (account password only) or a protocol ('imap', 'pop3', 'smtp') for which
   * application-specific passwords count too. Defaults to the session's protocol ('master' over HTTP).
   */
  readonly scope?: string;
}

/** What `auth.afterAuthenticate` sees: the request without the password. */
export interface AuthInfo {
  readonly username: string;
  readonly method: string;
}

/**
 * How a login attempt ended, for `auth.settled`: 'ok'; 'failed' (auth.authenticate refused the credentials and
 * auth.failed ran); 'refused' (a beforeAuthenticate tap said no, the password was not checked); 'error' (a
 * temporary failure, e.g. the password-check queue was full or the store down).
 */
export interface AuthSettled {
  readonly outcome: 'ok' | 'failed' | 'refused' | 'error';
  /** The verdict the client gets; null on success. */
  readonly verdict: Verdict | null;
}

// --- mailboxes ------------------------------------------------------------------------------------------

export interface CreateMailboxInput {
  readonly userId: Id;
  readonly path: string;
  readonly specialUse?: SpecialUse | null;
  readonly subscribed?: boolean;
}

export interface RenameMailboxInput {
  readonly userId: Id;
  readonly fromPath: string;
  readonly toPath: string;
}

export interface DeleteMailboxInput {
  readonly userId: Id;
  readonly mailboxId: Id;
}

export interface SubscribeMailboxInput {
  readonly userId: Id;
  /**
   * The mailbox, or null for a name without one: UNSUBSCRIBE of a subscription its mailbox's DELETE kept
   * (storage/subscriptions.ts), named by `path`.
   */
  readonly mailboxId: Id | null;
  /** The name (stored path); required when `mailboxId` is null. */
  readonly path?: string;
  readonly subscribed: boolean;
}

export interface SubscribeResult {
  readonly mailboxId: Id | null;
  readonly subscribed: boolean;
}

// --- messages -------------------------------------------------------------------------------------------

export interface StoreInput {
  readonly userId: Id;
  readonly mailboxId: Id;
  readonly flags: Flag[];
  /** ms since epoch */
  readonly internalDate: number;
  readonly source: MessageSource | Uint8Array;
  /** Size announced by the client (IMAP literal, LMTP SIZE, Content-Length), when known. */
  readonly declaredSize?: number;
}

/** What `message.beforeStore` and `message.prepare` see: the store request without its byte stream. */
export type StoreRequest = Omit<StoreInput, 'source'>;

/**
 * What `message.store` answers. A tap before the storage plugin may answer with a message that is already
 * stored (`existing: true`, made with `existingMessage()`): the pipeline then stores nothing, discards the
 * staged blobs, skips `message.afterStore`, and the caller reports that message (IMAP: OK [APPENDUID] with its
 * UID). Sent autosave uses it to swallow a client's second copy of a message the server already saved.
 */
export interface StoreResult extends AppendResult {
  readonly existing?: boolean;
}

export interface CopyInput {
  readonly userId: Id;
  /** Source mailbox. */
  readonly mailboxId: Id;
  readonly uids: number[];
  readonly targetMailboxId: Id;
}

export type MoveInput = CopyInput;

export interface ExpungeInput {
  readonly userId: Id;
  readonly mailboxId: Id;
  readonly uids: number[];
}

export interface ExpungeResult {
  /** UIDs actually removed. */
  readonly uids: number[];
}

export interface FlagsInput {
  readonly userId: Id;
  readonly mailboxId: Id;
  readonly uids: number[];
  readonly update: FlagUpdate;
}

// --- submission -----------------------------------------------------------------------------------------

export interface SubmitInput {
  readonly userId: Id;
  /** Envelope sender and recipients (SMTP MAIL FROM / RCPT TO). */
  readonly from: string;
  readonly to: string[];
  readonly source: MessageSource | Uint8Array;
}

export type SubmitRequest = Omit<SubmitInput, 'source'>;

/** What `submission.submit` sees: the request with the message read once, whole (bounded by the max size). */
export interface SubmitCommit extends SubmitRequest {
  readonly source: Uint8Array;
}

/** What `submission.afterSubmit` sees: the request plus the submitted bytes, readable again. */
export interface SubmittedMessage extends SubmitRequest {
  /** Size in bytes. */
  readonly size: number;
  /** Reads the message as submitted, from the start (may be called more than once). */
  open(): MessageSource;
  /**
   * An observer that stored the message (plugins/sent-autosave.ts: the Sent copy) reports the copy here, so the
   * caller of submitMessage learns what was stored without knowing which plugin stored it.
   */
  recordStored(copy: StoredCopy): void;
}

export interface SubmitResult {
  /** Queue or message id assigned by the plugin that accepted the message. */
  readonly id: string;
  /** Envelope recipients the relay refused while it accepted the others (the message went out to the rest). */
  readonly rejected?: readonly string[];
}

/** A copy of a submitted message that an afterSubmit observer stored (the Sent copy). */
export interface StoredCopy {
  readonly mailboxId: Id;
  readonly uid: number;
  /** The stored message's id. */
  readonly id: Id;
}

/** What submitMessage returns: the accepting plugin's result, plus the copies observers stored, in order. */
export interface SubmitOutcome extends SubmitResult {
  readonly stored: readonly StoredCopy[];
}

// --- delivery (LMTP now, HTTP later: hooks/pipeline/deliver.ts) ------------------------------------------

/** A recipient address that resolved to a local user. */
export interface DeliveryRecipient {
  /** The address as the client gave it (RCPT TO, API call). */
  readonly address: string;
  /** The normalized stored address it resolved to (without `+tag`). */
  readonly resolved: string;
  readonly userId: Id;
  readonly username: string;
}

/** What `delivery.beforeRecipient` sees: a recipient at RCPT time, before any message bytes. */
export interface RecipientRequest {
  /** Envelope sender ('' for the null sender `<>`). */
  readonly from: string;
  readonly recipient: DeliveryRecipient;
}

/** One message for one recipient, as the delivery hooks see it. */
export interface DeliveryRequest {
  /** Envelope sender ('' for the null sender `<>`). */
  readonly from: string;
  readonly recipient: DeliveryRecipient;
  /** Header fields of the message as received (before Return-Path and Delivered-To are added). */
  readonly headers: readonly HeaderField[];
  /** Size of the message as received, in bytes. */
  readonly size: number;
  /** Message-ID header value, or null. */
  readonly messageId: string | null;
  /** Reads the message as received, from the start (may be called more than once). */
  open(): MessageSource;
}

/** Where a delivered copy goes and what else happens to it. `delivery.route` taps return a changed copy. */
export interface DeliveryRoute {
  /** Target mailbox path; a missing mailbox falls back to INBOX. */
  readonly mailbox: string;
  /** When set and the user has a mailbox with this special use, it wins over `mailbox` (e.g. '\\Junk'). */
  readonly specialUse: SpecialUse | null;
  readonly flags: readonly Flag[];
  /** Accept without storing (a filter's delete action). */
  readonly discard: boolean;
  /** Classified as spam (spam routing, a filter): no forwarding, no autoreply. */
  readonly spam: boolean;
  /** Addresses to forward a copy to (acted on by a forwarding plugin in `delivery.afterDeliver`). */
  readonly forward: readonly string[];
  /** False to keep autoreply plugins quiet for this message. */
  readonly autoreply: boolean;
  /** Free-form notes taps leave for later taps and logs, e.g. `filter:<id>`. */
  readonly notes: readonly string[];
}

export interface DeliveryResult {
  readonly route: DeliveryRoute;
  /** The mailbox the copy went to; null when discarded or a duplicate. */
  readonly mailboxId: Id | null;
  /** That mailbox's path (for the delivery log line); null when discarded or a duplicate. */
  readonly mailboxPath?: string | null;
  /** The stored copy; null when discarded or a duplicate. */
  readonly stored: AppendResult | null;
  /** True when the same Message-ID reached this user within the duplicate window: accepted, not stored again. */
  readonly duplicate: boolean;
}

// --- transfer (daily IMAP/POP3 download limits: hooks/pipeline/transfer.ts) ------------------------------

/** Bytes a client is about to download (IMAP FETCH body sections, POP3 RETR/TOP), or has just downloaded. */
export interface TransferInput {
  readonly userId: Id;
  /** The session's protocol: 'imap' or 'pop3'. */
  readonly protocol: string;
  /** Message bytes sent as the response's content (IMAP literal sizes, POP3 message octets before dot-stuffing). */
  readonly bytes: number;
}

// --- account (users, addresses, application passwords, tokens, delivery rules: hooks/pipeline/account*.ts) ----
//
// One before/do/after triple per record kind; `action` says what happens to the record. The before-hook sees the
// change validated and normalized (a Verdict refuses it), the do-hook commits it (the storage plugin, at COMMIT),
// the after-hook sees it with its result once it is durable. Secrets (clear passwords, generated application
// passwords and tokens) are removed from what the after-hooks see.

/**
 * - `create`: a new user (`userId` null until the commit; `addresses` and the default mailboxes follow it, each
 *   through its own hooks: `account.beforeAddress`, `mailbox.beforeCreate`);
 * - `update`: name, quota or tags change (only the fields given);
 * - `password`: a new password (`password` null removes it: no password login);
 * - `disable` / `enable`: the user can no longer / can again log in;
 * - `delete`: the user with all mailboxes, messages, addresses and documents;
 * - `recalculate`: usage counters recounted from the stored messages (`wildduck quota recalc`).
 */
export type UserAction = 'create' | 'update' | 'password' | 'disable' | 'enable' | 'delete' | 'recalculate';

export interface UserChange {
  readonly action: UserAction;
  /** The user; null for `create`. */
  readonly userId: Id | null;
  /** Normalized login name: the new user's for `create`, the user's otherwise. */
  readonly username: string;
  /** create: the display name; update: the new one, when it changes. */
  readonly name?: string;
  /** create: the limits (server defaults filled in; null = the default); update: the limits that change. */
  readonly quota?: Partial<QuotaLimits>;
  /** create / update: the tags (normalized), replacing the old ones. */
  readonly tags?: readonly string[];
  /** create / password: the new password in clear, null for none. Before- and do-hooks only; never logged. */
  readonly password?: string | null;
  /** create: the normalized addresses the user gets, main first. */
  readonly addresses?: readonly string[];
}

/** - `add` a new address; `update` its display form or make it main; `delete` it. */
export type AddressAction = 'add' | 'update' | 'delete';

export interface AddressChange {
  readonly action: AddressAction;
  readonly userId: Id;
  /** The normalized address (local part NFC lowercased, Unicode domain): the new one for `add`, else the stored one. */
  readonly address: string;
  /** Its domain (Unicode, lowercased): what a "no addresses on domain X" rule looks at. */
  readonly domain: string;
  /** update / delete: the stored address's id. */
  readonly addressId: Id | null;
  /** add / update: how the address is written (shown to people). */
  readonly display?: string;
  /** add / update: make it the user's main address. */
  readonly main?: boolean;
}

export interface AppPasswordChange {
  readonly action: 'create' | 'delete';
  readonly userId: Id;
  /** delete: the application password's id. */
  readonly appPasswordId: Id | null;
  /** create: */
  readonly description?: string;
  readonly scopes?: readonly AspScope[];
  /** create: seconds of validity, renewed on every use; null = no expiry. */
  readonly ttl?: number | null;
  /** create: a pregenerated password (16 latin letters). Before- and do-hooks only. */
  readonly password?: string;
}

/** What `account.appPassword` answers; `password` (create only) is the clear password, removed for after-hooks. */
export interface AppPasswordResult {
  readonly id: Id;
  readonly description: string;
  readonly scopes: readonly AspScope[];
  /** ms since epoch; null = no expiry. */
  readonly expires: number | null;
  readonly password?: string;
}

export interface TokenChange {
  /** `create`: a new API access token (POST /authenticate with token: true); `delete`: revoke. */
  readonly action: 'create' | 'delete';
  readonly userId: Id;
  /** delete: the token's id, or null for every token of the user (logout everywhere). */
  readonly tokenId: Id | null;
  /** create: when it expires (ms since epoch) and who asked for it. */
  readonly expires?: number;
  readonly remoteAddress?: string;
}

/** What `account.token` answers; `token` (create only) is the clear token, removed for after-hooks. */
export interface TokenResult {
  /** The created token's id, or the revoked tokens' ids. */
  readonly ids: readonly Id[];
  readonly token?: string;
}

export interface FilterChange {
  readonly action: 'create' | 'update' | 'delete';
  readonly userId: Id;
  /** update / delete: the filter's id. */
  readonly filterId: Id | null;
  /** create / update: the whole filter, validated (storage/delivery-settings.ts filterSchema). */
  readonly filter?: FilterData;
}

export interface FilterResult {
  readonly id: Id;
  /** The filter as stored; the deleted one for `delete`. */
  readonly filter: FilterData | null;
}

export interface AutoreplyChange {
  /** `set` the autoreply (on or off with its text); `off` keeps the text but stops replying; `delete` removes it. */
  readonly action: 'set' | 'off' | 'delete';
  readonly userId: Id;
  /** set: the whole autoreply, validated. */
  readonly autoreply?: AutoreplyData;
}

export interface AutoreplyResult {
  /** The autoreply as stored now; null after `delete`, or `off` when there was none. */
  readonly autoreply: AutoreplyData | null;
}

/** Per-user delivery settings: forwarding targets (`changes.forward`) and the spam level. */
export interface SettingsChange {
  readonly action: 'update';
  readonly userId: Id;
  /** Only the settings that change; `forward: []` turns forwarding off. */
  readonly changes: { readonly forward?: readonly string[]; readonly spamLevel?: number | null };
}

export type { AutoreplyData, DeliverySettings, FilterData };

// --- protocol hooks -------------------------------------------------------------------------------------

/** A command after the protocol's command table checked its state and syntax. */
export interface CommandInput {
  /** Upper-case verb ('APPEND', 'UIDL', 'LHLO') or, for HTTP, the route key ('POST /users'). */
  readonly verb: string;
  /** IMAP tag, when the protocol has one. */
  readonly tag?: string;
  /** Parsed arguments, as the protocol's command table produced them. */
  readonly args: unknown;
}

/**
 * A plugin's answer that implements (or replaces) a command. Anything that is not a verdict; its shape is the
 * protocol's to define (e.g. IMAP: untagged lines plus a tagged OK text).
 */
export type CommandResult = { readonly [key: string]: unknown };
