/**
 * The message half of a RestorePort (storage/ports.ts), shared by the backends: each backend's messages store a
 * message at its UID and modseq (`restore`), set flags (`restoreFlags`) and remove UIDs (`restoreExpunge`) without
 * change-log entries; staged blobs of a message whose UID is there already are given back here.
 */
import type { AppendInput, BlobsPort, Flag, Id, RestorePort } from './ports.ts';

export interface RestorableMessages {
  /** False (nothing written) when the UID is there already. */
  restore(input: AppendInput & { uid: number; modseq: number }): Promise<boolean>;
  restoreFlags(mailboxId: Id, uid: number, flags: Flag[], modseq: number): Promise<boolean>;
  restoreExpunge(mailboxId: Id, uids: number[]): Promise<number[]>;
}

export abstract class RestoreMessages implements Pick<RestorePort, 'message' | 'flags' | 'expunge'> {
  readonly #messages: RestorableMessages;
  readonly #blobs: Pick<BlobsPort, 'discard'>;

  constructor(messages: RestorableMessages, blobs: Pick<BlobsPort, 'discard'>) {
    this.#messages = messages;
    this.#blobs = blobs;
  }

  async message(input: AppendInput & { uid: number; modseq: number }): Promise<void> {
    if (!(await this.#messages.restore(input))) await this.#blobs.discard(input.message.blobs);
  }

  flags(mailboxId: Id, uid: number, flags: Flag[], modseq: number): Promise<boolean> {
    return this.#messages.restoreFlags(mailboxId, uid, flags, modseq);
  }

  expunge(mailboxId: Id, uids: number[]): Promise<number[]> {
    return this.#messages.restoreExpunge(mailboxId, uids);
  }
}
