/**
 * A worker process's view of the primary's EphemeralHub, without processes: a RemoteEphemeral talks to the hub over
 * in-memory channels that copy every message through JSON and deliver it later, as the cluster IPC channel does.
 */
import type { EphemeralHub } from '../../storage/ephemeral/hub.ts';
import { RemoteEphemeral } from '../../storage/ephemeral/remote.ts';

const later = (fn: () => void) => setTimeout(fn, 0);

export interface IpcWorker {
  remote: RemoteEphemeral;
  /** The kinds of message this worker sent to the hub, in order. */
  sent: string[];
  /** The kinds of message the hub sent to this worker, in order. */
  received: string[];
  /** The worker process dies: the hub detaches it, the channel closes. */
  die(): Promise<void>;
}

export function ipcWorker(hub: EphemeralHub, options: { lingerMs?: number } = {}): IpcWorker {
  let toWorker: ((message: unknown) => void) | null = null;
  let open = true;
  const sent: string[] = [];
  const received: string[] = [];
  const peer = hub.attach({
    send: (m) => {
      received.push(m.t);
      later(() => open && toWorker?.(JSON.parse(JSON.stringify(m))));
    },
  });
  const remote = new RemoteEphemeral(
    {
      send: (m) => {
        if (!open) throw new Error('channel closed');
        sent.push(m.t);
        later(() => peer.receive(JSON.parse(JSON.stringify(m))));
      },
      onMessage: (handler) => (toWorker = handler),
    },
    options,
  );
  return {
    remote,
    sent,
    received,
    async die() {
      open = false;
      remote.close();
      await peer.detach();
    },
  };
}
