// The daemon's Prometheus metrics, in the text exposition format (version 0.0.4), without a
// client library: counters and histograms keyed by label values, gauges read when scraped.
export type Labels = Record<string, string>;

// Seconds: a CNI verb takes milliseconds to a few seconds (readiness waits up to 45 s).
export const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(l: Labels, extra?: [string, string]): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escape(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escape(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

export class Counter {
  private readonly values = new Map<string, { labels: Labels; v: number }>();
  constructor(readonly name: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = JSON.stringify(labels);
    const e = this.values.get(k) ?? { labels, v: 0 };
    e.v += by;
    this.values.set(k, e);
  }
  get(labels: Labels = {}): number {
    return this.values.get(JSON.stringify(labels))?.v ?? 0;
  }
  render(): string[] {
    return [...this.values.values()].map((e) => `${this.name}${labelText(e.labels)} ${e.v}`);
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; n: number }>();
  constructor(readonly name: string, private readonly buckets = BUCKETS) {}
  observe(labels: Labels, seconds: number): void {
    const k = JSON.stringify(labels);
    const s = this.series.get(k) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, n: 0 };
    this.buckets.forEach((b, i) => {
      if (seconds <= b) s.counts[i]! += 1;
    });
    s.sum += seconds;
    s.n += 1;
    this.series.set(k, s);
  }
  render(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${labelText(s.labels, ['le', String(b)])} ${s.counts[i]}`));
      out.push(`${this.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${s.n}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.n}`);
    }
    return out;
  }
}

export class Registry {
  private readonly families: Family[] = [];

  counter(name: string, help: string): Counter {
    const c = new Counter(name);
    this.families.push({ name, help, type: 'counter', render: () => c.render() });
    return c;
  }

  histogram(name: string, help: string): Histogram {
    const h = new Histogram(name);
    this.families.push({ name, help, type: 'histogram', render: () => h.render() });
    return h;
  }

  /** A gauge computed at scrape time: one sample per returned [labels, value]. */
  gauge(name: string, help: string, read: () => Array<[Labels, number]>): void {
    this.families.push({ name, help, type: 'gauge', render: () => read().map(([l, v]) => `${name}${labelText(l)} ${v}`) });
  }

  render(): string {
    const lines: string[] = [];
    for (const f of this.families) {
      lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.render());
    }
    return lines.join('\n') + '\n';
  }
}
