/**
 * The README is the front door and docs/ holds the depth: every relative link in them must lead somewhere
 * (the file, and for `#anchor` links a heading of that file, by GitHub's anchor rules), and the README must
 * stay short enough to read in a few screens.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOCS = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Markdown without fenced code blocks and inline code, where link syntax means nothing. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, text] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = text!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function links(file: string): string[] {
  const text = prose(readFileSync(path.join(ROOT, file), 'utf8'));
  return [...text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((m) => m[1]!)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

describe.each(DOCS)('%s', (file) => {
  it('starts with a title', () => {
    expect(readFileSync(path.join(ROOT, file), 'utf8')).toMatch(/^# \S/);
  });

  it.each(links(file).map((l) => [l]))('link %s resolves', (target) => {
    const [filePart, anchor] = target.split('#') as [string, string | undefined];
    const resolved = filePart === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), filePart);
    expect(existsSync(resolved), `${file} → ${target}: no such file`).toBe(true);
    if (anchor !== undefined && resolved.endsWith('.md')) {
      expect([...anchors(readFileSync(resolved, 'utf8'))], `${file} → ${target}: no such heading`).toContain(decodeURIComponent(anchor));
    }
  });
});

it('README.md fits in 300 lines', () => {
  expect(readFileSync(path.join(ROOT, 'README.md'), 'utf8').trimEnd().split('\n').length).toBeLessThanOrEqual(300);
});

it('finds the anchors GitHub makes', () => {
  expect([...anchors('# Metrics — `GET /metrics`\n## Similar titles (co-watch)\n## A\n## A\n```\n# not a heading\n```')]).toEqual([
    'metrics--get-metrics',
    'similar-titles-co-watch',
    'a',
    'a-1',
  ]);
});
