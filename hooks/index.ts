/** What plugin authors import: stages, verdicts, context and plugin types. */
export { STAGES, GUARD, POLICY, DEFAULT, TRANSFORM, COMMIT, OBSERVE, stageName } from './stages.ts';
export type { StageName } from './stages.ts';
export { ERROR_CODES, deny, tempfail, disconnect, isVerdict, ok, fail, VerdictError, HookFailure } from './verdict.ts';
export { existingMessage } from './pipeline/store-message.ts';
export type { Verdict, VerdictAction, ErrorCode, OperationResult } from './verdict.ts';
export { definePlugin, PluginError } from './host.ts';
export type { Plugin, PluginApi, PluginPipeline, PluginFactory, PluginRegistry, LoadedPlugin } from './host.ts';
export type { TapOnlyHooks, TapOnlyHook, TapOnlyHookMap, PluginTapOptions } from './view.ts';
export type { HookContext, Session, SessionUser, Protocol } from './context.ts';
export type { StorageReader } from './storage-reader.ts';
export type * from './types.ts';
export { imapInput, tokenText, mailboxPath, mailboxName, imapString, imapAstring, imapObjectId } from './imap.ts';
export type { ImapCommandInput, ImapCommandOutput, ImapCommandResult, ImapSearchMatches, ImapSelectedMailbox, ImapToken, ObjectKind } from './imap.ts';
export { publishUserEvent, userEventChannel } from './events.ts';
export type { UserEvent } from './events.ts';
