/**
 * Request metrics for `GET /metrics`, kept in this process and rendered in the Prometheus text exposition
 * format (version 0.0.4): a counter of requests by method, route pattern and status, and a duration histogram
 * by method and route. Routes are labelled by pattern (`/users/:user`), never by raw path, so the number of
 * series stays bounded; unmatched requests count under the route `unmatched`.
 */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

export class HttpMetrics {
  #requests = new Map<string, number>();
  #durations = new Map<string, Histogram>();
  readonly started = Date.now();

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = labels({ method, route, status: String(status) });
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    const hkey = labels({ method, route });
    let h = this.#durations.get(hkey);
    if (!h) this.#durations.set(hkey, (h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.counts[i]!++;
    h.sum += seconds;
    h.count++;
  }

  render(): string {
    const out: string[] = [];
    out.push('# HELP wildduck_http_requests_total HTTP API requests by method, route pattern and status.');
    out.push('# TYPE wildduck_http_requests_total counter');
    for (const [key, n] of this.#requests) out.push(`wildduck_http_requests_total{${key}} ${n}`);
    out.push('# HELP wildduck_http_request_duration_seconds HTTP API request duration, from first byte to response end.');
    out.push('# TYPE wildduck_http_request_duration_seconds histogram');
    for (const [key, h] of this.#durations) {
      BUCKETS.forEach((le, i) => out.push(`wildduck_http_request_duration_seconds_bucket{${key},le="${le}"} ${h.counts[i]}`));
      out.push(`wildduck_http_request_duration_seconds_bucket{${key},le="+Inf"} ${h.count}`);
      out.push(`wildduck_http_request_duration_seconds_sum{${key}} ${h.sum}`);
      out.push(`wildduck_http_request_duration_seconds_count{${key}} ${h.count}`);
    }
    out.push('# HELP wildduck_process_start_time_seconds Start time of this server process since the Unix epoch.');
    out.push('# TYPE wildduck_process_start_time_seconds gauge');
    out.push(`wildduck_process_start_time_seconds ${Math.floor(this.started / 1000)}`);
    return out.join('\n') + '\n';
  }
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}="${escape(v)}"`)
    .join(',');
}
