/**
 * Reading what Prometheus and Grafana read: the text exposition format of a scrape, and the PromQL
 * expressions of the provisioned dashboard (with the metric names each one queries).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DASHBOARD_PATH = path.join(ROOT, 'grafana/dashboards/recommendation-service.json');

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  /** `# TYPE` of every metric family. */
  types: Map<string, string>;
  samples: Sample[];
  /** Sum of every sample named `name` whose labels include `match` (all of them when omitted). */
  sum(name: string, match?: Record<string, string>): number;
  /** Whether at least one sample of that exact name exists. */
  has(name: string): boolean;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseScrape(text: string): Scrape {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`unparseable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL)) labels[k!] = v!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  const names = new Set(samples.map((s) => s.name));
  return {
    types,
    samples,
    sum: (name, match = {}) =>
      samples
        .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
        .reduce((acc, s) => acc + s.value, 0),
    has: (name) => names.has(name),
  };
}

interface Panel {
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
  gridPos?: { x: number; y: number; w: number; h: number };
  id?: number;
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
}

export function loadDashboard(file = DASHBOARD_PATH): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression of the dashboard, with the panel it belongs to. */
export function dashboardExpressions(dashboard: Dashboard): { panel: string; expr: string }[] {
  return allPanels(dashboard).flatMap((p) =>
    (p.targets ?? []).filter((t) => t.expr).map((t) => ({ panel: p.title ?? '?', expr: t.expr! })),
  );
}

/** Grafana's interval variables as Prometheus would see them after substitution. */
export function substituteGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '1m');
}

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan', 'atan2',
]);

/**
 * Metric names a PromQL expression selects: identifiers that are not functions/aggregations (followed
 * by "("), keywords, label names or values (inside {} and grouping clauses), durations or strings.
 */
export function metricNames(expr: string): string[] {
  const stripped = substituteGrafanaVariables(expr)
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // grouping labels
    .replace(/\boffset\s+-?[0-9a-z]+/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    if (!KEYWORDS.has(m[1]!)) names.add(m[1]!);
  }
  return [...names];
}

/**
 * What must exist in a scrape for `name` to return data: `x_bucket`/`x_sum`/`x_count` of a histogram
 * `x` are series of the family `x`; anything else is its own family.
 */
export function familyOf(name: string, types: Map<string, string>): string {
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m && (types.get(m[1]!) === 'histogram' || types.get(m[1]!) === 'summary')) return m[1]!;
  return name;
}
