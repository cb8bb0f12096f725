/** Pipeline functions: the only callers of `.promise()` on hooks. Protocols call these. */
export { storeMessage, existingMessage } from './store-message.ts';
export { StoreBatch } from './store-messages.ts';
export { copyMessages, moveMessages, expungeMessages, updateFlags } from './messages.ts';
export { createMailbox, renameMailbox, deleteMailbox, subscribeMailbox } from './mailboxes.ts';
export { authenticate } from './authenticate.ts';
export { submitMessage } from './submit.ts';
export { checkDownload, reportDownload } from './transfer.ts';
export { connectSession, closeSession, runCommand, reportCommand, listCapabilities } from './session.ts';
export type { CloseReason, CommandProtocol, CommandReport } from './session.ts';
export type { IngestFn, PipelineApp } from './run.ts';
export { deliverMessage, resolveRecipient } from './deliver.ts';
export type { DeliverInput, DeliveryOutcome, DeliverySource } from './deliver.ts';
export { createUser, changeUser, addAddress, updateAddress, deleteAddress } from './account.ts';
export type { NewUser, CreatedUser, UserUpdate } from './account.ts';
export {
  createAppPassword,
  deleteAppPassword,
  issueToken,
  revokeTokens,
  putFilter,
  deleteFilter,
  setAutoreply,
  stopAutoreply,
  updateSettings,
} from './account-documents.ts';
