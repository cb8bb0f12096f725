/**
 * Inputs and results of the domain hooks. Pipeline functions (hooks/pipeline/) take these inputs; the storage
 * plugin turns them into StoragePorts calls.
 */
import type {
  AppendInput,
  AppendResult,
  CopyResult,
  Flag,
  FlagResult,
  FlagUpdate,
  Id,
  MailboxRecord,
  SpecialUse,
  UserRecord,
} from '../storage/ports.ts';

export type { AppendInput, AppendResult, CopyResult, FlagResult, MailboxRecord, UserRecord };

/** A message as a stream of bytes. `message.prepare` taps return a new one to rewrite the message. */
export type MessageSource = AsyncIterable<Uint8Array>;

// --- auth -----------------------------------------------------------------------------------------------

export interface AuthInput {
  readonly username: string;
  readonly password: string;
  /** SASL mechanism or protocol command: 'PLAIN', 'LOGIN', 'USER', 'BASIC', ... */
  readonly method: string;
}

/** What `auth.afterAuthenticate` sees: the request without the password. */
export interface AuthInfo {
  readonly username: string;
  readonly method: string;
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
  readonly mailboxId: Id;
  readonly subscribed: boolean;
}

export interface SubscribeResult {
  readonly mailboxId: Id;
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

export interface SubmitResult {
  /** Queue or message id assigned by the plugin that accepted the message. */
  readonly id: string;
}

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
