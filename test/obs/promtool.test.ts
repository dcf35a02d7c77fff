/**
 * Prometheus' own parser accepts the scrape config and every dashboard expression. promtool 2.42 has no
 * offline expression checker, so the expressions become recording rules and `promtool check rules`
 * parses them. Skipped, saying why, where promtool is not installed (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, dashboardExpressions, loadDashboard, substituteGrafanaVariables } from '../support/prometheus.js';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const missing = promtool.error ? 'promtool is not on PATH (Debian: apt-get install prometheus; .ci/run installs it)' : '';
let dir: string;

function run(...args: string[]) {
  const r = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** A rules file (JSON is YAML) recording each expression: promtool parses every `expr`. */
function checkExpressions(exprs: string[]) {
  const file = path.join(dir, `rules-${Math.random().toString(36).slice(2)}.yml`);
  const rules = exprs.map((expr, i) => ({ record: `dashboard:expr_${i + 1}`, expr: substituteGrafanaVariables(expr) }));
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
  return run('check', 'rules', file);
}

describe.skipIf(missing !== '')(`promtool${missing ? ` (skipped: ${missing})` : ''}`, () => {
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'promtool-test-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts grafana/prometheus.yml', () => {
    const r = run('check', 'config', 'grafana/prometheus.yml');
    expect(r.output).toContain('SUCCESS');
    expect(r.code, r.output).toBe(0);
  });

  it('parses every dashboard expression', () => {
    const exprs = dashboardExpressions(loadDashboard()).map((e) => e.expr);
    expect(exprs.length).toBeGreaterThan(30);
    const r = checkExpressions(exprs);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${exprs.length} rules found`);
  });

  it('rejects a broken expression (the check can fail)', () => {
    const r = checkExpressions(['sum(rate(http_requests_total[1m])', 'sum by (route) rate(http_requests_total[1m])']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/parse error/i);
  });
});
