/**
 * The bench's result: rows of (workload, unit, ours, Dovecot), the advantage column oriented so that > 1 always
 * means ours is better (throughput: ours / Dovecot; time, memory, CPU, bytes: Dovecot / ours), printed as one
 * Markdown table and written as JSON. A missing figure (a workload skipped or failed for one server, or a row kept
 * for a backend that does not exist yet) prints as "–" with no advantage.
 */

export interface Row {
  workload: string;
  unit: string;
  /** Which way is better for this figure. */
  better: 'higher' | 'lower';
  ours: number | null;
  dovecot: number | null;
  note?: string;
}

export interface BenchResult {
  startedAt: string;
  durationSeconds: number;
  mode: 'quick' | 'full';
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; dovecot: string };
  rows: Row[];
  /** Everything else measured (repeats, counts, errors), per workload. */
  details: Record<string, unknown>;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** > 1 when ours is better, < 1 when Dovecot is; null when either figure is missing or zero. */
export function advantage(row: Row): number | null {
  const { ours, dovecot } = row;
  if (ours === null || dovecot === null || !Number.isFinite(ours) || !Number.isFinite(dovecot)) return null;
  if (row.better === 'higher') return dovecot === 0 ? null : ours / dovecot;
  return ours === 0 ? null : dovecot / ours;
}

/** A figure with about three significant digits and thousands separators. */
export function formatFigure(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatAdvantage(value: number | null): string {
  if (value === null) return '–';
  return `${value >= 10 ? value.toFixed(0) : value >= 1 ? value.toFixed(2) : value.toFixed(3)}×`;
}

/** The Markdown table printed at the end of a run (and pasted into the README). */
export function formatTable(rows: Row[]): string {
  const lines = ['| workload | unit | ours | Dovecot | ours vs Dovecot (> 1 = ours better) |', '|---|---|---:|---:|---:|'];
  for (const row of rows) {
    const name = row.note ? `${row.workload} (${row.note})` : row.workload;
    lines.push(`| ${name} | ${row.unit} | ${formatFigure(row.ours)} | ${formatFigure(row.dovecot)} | ${formatAdvantage(advantage(row))} |`);
  }
  return lines.join('\n');
}

/** The JSON written next to the table: rows with their advantage computed. */
export function toJson(result: BenchResult): string {
  return JSON.stringify({ ...result, rows: result.rows.map((r) => ({ ...r, advantage: advantage(r) })) }, null, 2) + '\n';
}
