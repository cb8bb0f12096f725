/**
 * Gives memory back after a burst. A login storm (every client reconnecting after a network outage) leaves a worker's
 * heap grown by the garbage of thousands of logins, interleaved with the sessions that stay. V8 compacts and returns
 * those pages to the system only from its idle-time memory reducer, which starts after a full collection and may wait
 * up to 100 s (or, after a small burst, not run at all). So when the heap has grown by `growthBytes` since the last
 * settle and the process is quiet (its event loop busy less than `quietUtilization` of the last check interval),
 * this runs one full collection: that marks the garbage and starts the reducer, which compacts within seconds.
 *
 * The first quiet moment after the start settles as well: the garbage of loading the code is the same kind of waste.
 * Every process of the server runs one (protocols/net/cluster.ts). It needs the collector, exposed at run time on
 * Node.js (`exposedGc`); on Deno this does nothing.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';

export interface MemorySettleOptions {
  /** Heap growth since the last settle (or the start) that calls for one. */
  growthBytes: number;
  /** How often the heap and the event loop are looked at. */
  checkMs: number;
  /** Event-loop utilization (0..1) over the last check below which the process counts as quiet. */
  quietUtilization?: number;
  /** For tests: the collector, the heap size and the utilization since the last call. */
  gc?: (() => void) | null;
  heapBytes?: () => number;
  utilization?: () => number;
  onSettle?: (info: { grownBytes: number; ms: number }) => void;
}

/**
 * The collector: the global `gc` when the process was started with --expose-gc, else (Node.js) one exposed now
 * through V8's flag in a fresh context, the way the `expose-gc` package does; null where neither works (Deno).
 */
export function exposedGc(): (() => void) | null {
  let gc = (globalThis as { gc?: unknown }).gc;
  if (typeof gc !== 'function' && !('Deno' in globalThis)) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc');
    } catch {
      gc = undefined;
    }
  }
  return typeof gc === 'function' ? () => void (gc as () => unknown)() : null;
}

function heapUsedTotal(): number {
  return getHeapStatistics().total_heap_size;
}

function utilizationMeter(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}

export class MemorySettler {
  readonly #options: Required<Omit<MemorySettleOptions, 'gc' | 'onSettle'>> & Pick<MemorySettleOptions, 'onSettle'>;
  readonly #gc: () => void;
  #baseline: number;
  #timer: ReturnType<typeof setInterval> | null = null;

  private constructor(gc: () => void, options: MemorySettleOptions) {
    this.#gc = gc;
    this.#options = {
      growthBytes: options.growthBytes,
      checkMs: options.checkMs,
      quietUtilization: options.quietUtilization ?? 0.05,
      heapBytes: options.heapBytes ?? heapUsedTotal,
      utilization: options.utilization ?? utilizationMeter(),
      onSettle: options.onSettle,
    };
    // from nothing: the first quiet moment after the start settles too (the start's garbage: loading and compiling
    // the code, the first SELECT rehearsed)
    this.#baseline = 0;
  }

  /** A settler checking every `checkMs`, or null when the collector is not exposed. */
  static start(options: MemorySettleOptions): MemorySettler | null {
    const gc = options.gc === undefined ? exposedGc() : options.gc;
    if (!gc) return null;
    const settler = new MemorySettler(gc, options);
    settler.#timer = setInterval(() => settler.check(), options.checkMs);
    (settler.#timer as { unref?: () => void }).unref?.();
    return settler;
  }

  /** One look: settles when the heap grew enough and the last interval was quiet. True when it did. */
  check(): boolean {
    const heap = this.#options.heapBytes();
    const busy = this.#options.utilization();
    if (heap < this.#baseline) this.#baseline = heap; // shrunk by itself: measure growth from the low point
    const grown = heap - this.#baseline;
    if (grown < this.#options.growthBytes || busy >= this.#options.quietUtilization) return false;
    const t0 = performance.now();
    this.#gc();
    this.#baseline = this.#options.heapBytes();
    this.#options.onSettle?.({ grownBytes: grown, ms: performance.now() - t0 });
    return true;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
