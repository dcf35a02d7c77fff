#!/usr/bin/env node
/**
 * Summarizes V8 .cpuprofile files (node --cpu-prof) to the functions with the most self time.
 * Usage: node bench/profile-summary.mjs <file-or-dir>... [--top N]
 * Profiles of one kind (e.g. every HTTP worker's main thread) are merged before ranking.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Self time per function (name + file:line) of the given profiles, merged. */
export function summarize(files, top = 15) {
  const self = new Map();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8'));
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const { samples, timeDeltas } = profile;
    for (let i = 0; i < samples.length; i++) {
      const node = byId.get(samples[i]);
      const us = timeDeltas[i] ?? 0;
      if (!node || us < 0) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      const where = url ? `${shorten(url)}:${lineNumber + 1}` : '';
      const key = `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
      self.set(key, (self.get(key) ?? 0) + us);
      total += us;
    }
  }
  // Piscina's threads block in Atomics.wait between tasks: sampled as a running function, but waiting.
  const waiting = (k) => k === '(idle)' || k.startsWith('atomicsWaitLoop ');
  let idle = 0;
  for (const [k, us] of self) if (waiting(k)) idle += us;
  const busy = total - idle;
  const rows = [...self]
    .filter(([k]) => !waiting(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({ fn, ms: us / 1000, pctOfBusy: busy > 0 ? (100 * us) / busy : 0 }));
  return { files: files.length, totalMs: total / 1000, busyMs: busy / 1000, idlePct: total ? (100 * idle) / total : 0, rows };
}

function shorten(url) {
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  const dist = u.indexOf('/dist/');
  if (dist >= 0) return u.slice(dist + 1);
  return u.startsWith('node:') ? u : path.basename(u);
}

export function formatSummary(title, s) {
  const lines = [
    `#### ${title}`,
    '',
    `${s.files} profile(s), ${(s.busyMs / 1000).toFixed(1)} s busy, ${s.idlePct.toFixed(0)} % idle (Atomics.wait of Piscina threads counted as idle)`,
    '',
    '| self time | % of busy | function |',
    '|---:|---:|---|',
    ...s.rows.map((r) => `| ${r.ms.toFixed(0)} ms | ${r.pctOfBusy.toFixed(1)} % | \`${r.fn.replaceAll('|', '\\|')}\` |`),
  ];
  return lines.join('\n');
}

function expand(arg) {
  if (statSync(arg).isDirectory()) return readdirSync(arg).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(arg, f));
  return [arg];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 15;
  if (args.length === 0) {
    process.stderr.write('usage: node bench/profile-summary.mjs <file-or-dir>... [--top N]\n');
    process.exit(2);
  }
  const files = args.flatMap(expand);
  process.stdout.write(formatSummary(args.join(' '), summarize(files, top)) + '\n');
}
