/**
 * Check-then-write sequences of one process, one at a time per key.
 *
 * On MongoDB the unique indexes (collections.ts) are what keeps names unique between writers on different instances:
 * a write they refuse fails with a duplicate key error, which the ports report as ALREADYEXISTS. The ports also look
 * before they write (a taken name is refused without a write to undo), and run the look and the write of one name
 * one at a time in this process, so two writers of the same process never both see the name free. That is what keeps
 * names unique on a server that enforces no unique index (the tests' stand-in) when one instance writes.
 */
export class KeyedSerial {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` once every earlier `run` with the same key has settled. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const result = before.then(fn, fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
