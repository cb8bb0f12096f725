/**
 * The server's metrics registry, one per App (tests with several apps never mix counts), rendered by
 * `GET /metrics` in the Prometheus text exposition format (version 0.0.4). Protocols carry no metrics logic:
 * the registry is fed from the places every protocol already passes through —
 *
 * ```
 * connectSession / closeSession   wildduck_connections_total{protocol}, wildduck_connections{protocol} (open now)
 * reportCommand                   wildduck_commands_total{protocol,command,status},
 *                                 wildduck_command_duration_seconds{protocol,command}, and for failed commands
 *                                 wildduck_errors_total{protocol,code}
 * deliverMessage                  wildduck_deliveries_total{outcome,code}
 * the HTTP listener's reply       wildduck_http_requests_total{method,route,status},
 *                                 wildduck_http_request_duration_seconds{method,route}, wildduck_errors_total
 * ```
 *
 * Label values come from bounded sets (protocols, route patterns, status words, verdict codes); command verbs
 * are client input, so a protocol keeps at most MAX_VERBS distinct ones and counts the rest as `OTHER`.
 */

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const MAX_VERBS = 64;

type Labels = Record<string, string>;

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(values: Labels): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}="${escape(v)}"`)
    .join(',');
}

function number(n: number): string {
  return Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  render(out: string[]): void;
}

/** A counter or gauge: one value per label set. */
class Series implements Family {
  readonly #values = new Map<string, number>();
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  constructor(name: string, help: string, type: 'counter' | 'gauge') {
    this.name = name;
    this.help = help;
    this.type = type;
  }

  add(labels: Labels, n = 1): void {
    const key = labelText(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + n);
  }

  get(labels: Labels): number {
    return this.#values.get(labelText(labels)) ?? 0;
  }

  render(out: string[]): void {
    for (const [key, n] of this.#values) out.push(`${this.name}${key ? `{${key}}` : ''} ${number(n)}`);
  }
}

interface Buckets {
  counts: number[];
  sum: number;
  count: number;
}

class Histogram implements Family {
  readonly type = 'histogram';
  readonly #values = new Map<string, Buckets>();
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];
  constructor(name: string, help: string, buckets: readonly number[] = DURATION_BUCKETS) {
    this.name = name;
    this.help = help;
    this.buckets = buckets;
  }

  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    let h = this.#values.get(key);
    if (!h) this.#values.set(key, (h = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) h.counts[i]!++;
    h.sum += value;
    h.count++;
  }

  count(labels: Labels): number {
    return this.#values.get(labelText(labels))?.count ?? 0;
  }

  render(out: string[]): void {
    for (const [key, h] of this.#values) {
      const pre = key ? `${key},` : '';
      this.buckets.forEach((le, i) => out.push(`${this.name}_bucket{${pre}le="${le}"} ${h.counts[i]}`));
      out.push(`${this.name}_bucket{${pre}le="+Inf"} ${h.count}`);
      out.push(`${this.name}_sum${key ? `{${key}}` : ''} ${number(h.sum)}`);
      out.push(`${this.name}_count${key ? `{${key}}` : ''} ${h.count}`);
    }
  }
}

/** How a command went, as the protocol reports it (see hooks/pipeline/session.ts `reportCommand`). */
export interface CommandMetric {
  readonly protocol: string;
  readonly verb: string;
  /** The protocol's status word: IMAP OK / NO / BAD, POP3 +OK / -ERR, LMTP the reply code (250, 550). */
  readonly status: string;
  readonly ok: boolean;
  /** For a failed command: its response code (IMAP [CODE], POP3 [CODE], LMTP enhanced status), else null. */
  readonly code: string | null;
  readonly seconds: number;
}

/** What happened to one recipient's copy in deliverMessage. */
export type DeliveryMetricOutcome = 'stored' | 'duplicate' | 'discarded' | 'deferred' | 'rejected';

export class Metrics {
  readonly started = Date.now();
  readonly #families: Family[] = [];
  readonly #verbs = new Map<string, Set<string>>();

  readonly connectionsTotal = this.#add(new Series('wildduck_connections_total', 'Client connections accepted, by protocol.', 'counter'));
  readonly connectionsOpen = this.#add(new Series('wildduck_connections', 'Client connections open now, by protocol.', 'gauge'));
  readonly commands = this.#add(new Series('wildduck_commands_total', 'IMAP, POP3 and LMTP commands by protocol, command and status.', 'counter'));
  readonly commandDuration = this.#add(new Histogram('wildduck_command_duration_seconds', 'Command duration, from the command read to its final response, by protocol and command.'));
  readonly errors = this.#add(
    new Series('wildduck_errors_total', 'Failed commands and API requests by protocol and code (response code, enhanced status code or API error code).', 'counter'),
  );
  readonly deliveries = this.#add(new Series('wildduck_deliveries_total', 'Delivered copies (one per recipient) by outcome, with the verdict code of a failure.', 'counter'));
  readonly httpRequests = this.#add(new Series('wildduck_http_requests_total', 'HTTP API requests by method, route pattern and status.', 'counter'));
  readonly httpDuration = this.#add(new Histogram('wildduck_http_request_duration_seconds', 'HTTP API request duration, from first byte to response end.'));

  #add<F extends Family>(family: F): F {
    this.#families.push(family);
    return family;
  }

  connectionOpened(protocol: string): void {
    this.connectionsTotal.add({ protocol });
    this.connectionsOpen.add({ protocol }, 1);
  }

  connectionClosed(protocol: string): void {
    this.connectionsOpen.add({ protocol }, -1);
  }

  /** A verb label from client input: upper-cased, and `OTHER` once a protocol has MAX_VERBS distinct ones. */
  verbLabel(protocol: string, verb: string): string {
    const v = /^[A-Za-z][A-Za-z0-9._-]{0,31}$/.test(verb) ? verb.toUpperCase() : 'OTHER';
    let seen = this.#verbs.get(protocol);
    if (!seen) this.#verbs.set(protocol, (seen = new Set()));
    if (seen.has(v)) return v;
    if (seen.size >= MAX_VERBS) return 'OTHER';
    seen.add(v);
    return v;
  }

  command(m: CommandMetric): void {
    const command = this.verbLabel(m.protocol, m.verb);
    this.commands.add({ protocol: m.protocol, command, status: m.status });
    this.commandDuration.observe({ protocol: m.protocol, command }, m.seconds);
    if (!m.ok) this.errors.add({ protocol: m.protocol, code: m.code ?? m.status });
  }

  delivery(outcome: DeliveryMetricOutcome, code: string | null): void {
    this.deliveries.add({ outcome, code: code ?? '' });
  }

  httpRequest(method: string, route: string, status: number, code: string | null, seconds: number): void {
    this.httpRequests.add({ method, route, status: String(status) });
    this.httpDuration.observe({ method, route }, seconds);
    if (status >= 400) this.errors.add({ protocol: 'http', code: code ?? String(status) });
  }

  render(): string {
    const out: string[] = [];
    for (const f of this.#families) {
      out.push(`# HELP ${f.name} ${f.help}`);
      out.push(`# TYPE ${f.name} ${f.type}`);
      f.render(out);
    }
    out.push('# HELP wildduck_process_start_time_seconds Start time of this server process since the Unix epoch.');
    out.push('# TYPE wildduck_process_start_time_seconds gauge');
    out.push(`wildduck_process_start_time_seconds ${Math.floor(this.started / 1000)}`);
    return out.join('\n') + '\n';
  }
}
