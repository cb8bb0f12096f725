/** What the blob stores' writers (BlobsPort.stage) share: calls run one at a time, staged blobs kept by hash. */

/** A function that runs the async calls given to it one after another, each once the one before has settled. */
export function serialCalls(): <T>(fn: () => Promise<T>) => Promise<T> {
  let chain: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn);
    chain = p.catch(() => undefined);
    return p;
  };
}

/**
 * Blobs a process staged and nobody has committed or discarded yet, by content hash (several writers may stage the
 * same content): kept here until a message commit takes them.
 */
export class StagedByHash<T extends { readonly hash: string }> {
  readonly #byHash = new Map<string, T[]>();

  push(e: T): void {
    const list = this.#byHash.get(e.hash);
    if (list) list.push(e);
    else this.#byHash.set(e.hash, [e]);
  }

  /** Takes the oldest entry staged with this hash. */
  pop(hash: string): T | undefined {
    const list = this.#byHash.get(hash);
    const e = list?.shift();
    if (list && list.length === 0) this.#byHash.delete(hash);
    return e;
  }

  /** Takes this entry; false when a commit or discard took it already. */
  remove(e: T): boolean {
    const list = this.#byHash.get(e.hash);
    const i = list ? list.indexOf(e) : -1;
    if (!list || i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.#byHash.delete(e.hash);
    return true;
  }

  all(): T[] {
    return [...this.#byHash.values()].flat();
  }

  clear(): void {
    this.#byHash.clear();
  }
}
