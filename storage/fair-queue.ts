/**
 * A bounded, fair work queue: at most `concurrency` tasks run at once; the rest wait in one FIFO line per key
 * (a client network), and the lines are served round-robin, so one client's burst waits behind itself instead
 * of in front of everyone. A full queue (`maxQueue` waiting in all, or `maxQueuePerKey` for one key) refuses at
 * once with QueueFullError: a burst is shed, not queued without end. Used for password hashing
 * (storage/password-check.ts), whose cost (tens of milliseconds of CPU and 32 MiB each) must not pile up.
 */

export interface FairQueueOptions {
  /** Tasks running at once (≥ 1). */
  concurrency: number;
  /** Tasks waiting, all keys together (≥ 0). */
  maxQueue: number;
  /** Tasks waiting for one key (≥ 0). */
  maxQueuePerKey: number;
}

export class QueueFullError extends Error {
  constructor(message = 'queue is full') {
    super(message);
    this.name = 'QueueFullError';
  }
}

export class FairQueue {
  readonly #options: FairQueueOptions;
  #running = 0;
  #queued = 0;
  /** Waiting tasks per key; Map order is the round-robin order (a served key moves to the end). */
  readonly #lines = new Map<string, Array<() => void>>();

  constructor(options: FairQueueOptions) {
    if (!(options.concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
    this.#options = { ...options };
  }

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#queued;
  }

  /** Runs `task` now or when its turn comes; rejects with QueueFullError when it cannot wait. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    if (this.#running < this.#options.concurrency && this.#queued === 0) return this.#start(task);
    const line = this.#lines.get(key);
    if (this.#queued >= this.#options.maxQueue || (line?.length ?? 0) >= this.#options.maxQueuePerKey) {
      return Promise.reject(new QueueFullError());
    }
    return new Promise<T>((resolve, reject) => {
      const job = () => void this.#start(task).then(resolve, reject);
      if (line) line.push(job);
      else this.#lines.set(key, [job]);
      this.#queued++;
    });
  }

  async #start<T>(task: () => Promise<T>): Promise<T> {
    this.#running++;
    try {
      return await task();
    } finally {
      this.#running--;
      this.#next();
    }
  }

  #next(): void {
    while (this.#running < this.#options.concurrency) {
      const first = this.#lines.entries().next();
      if (first.done) return;
      const [key, line] = first.value;
      const job = line.shift()!;
      this.#lines.delete(key);
      if (line.length > 0) this.#lines.set(key, line); // to the end of the round
      this.#queued--;
      job();
    }
  }
}
