/**
 * Which uWebSockets.js build serves which Node and glibc (src/http/uws.ts, docs/node-support.md): the table
 * is checked against the binaries the pinned packages ship, and the build chosen here against the table.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILDS, NODE_ABI, glibcVersion, loadUws } from '../../src/http/uws.js';

const require = createRequire(import.meta.url);
const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

/** The newest glibc symbol version a binary asks for: the oldest glibc it loads on. */
function newestGlibcSymbol(file: string): string {
  const versions = [...readFileSync(file).toString('latin1').matchAll(/GLIBC_(2\.\d+(?:\.\d+)?)\0/g)].map((m) => m[1]!);
  return versions.sort(compare).at(-1)!;
}

function compare(a: string, b: string): number {
  const [pa, pb] = [a.split('.').map(Number), b.split('.').map(Number)];
  return (pa[0]! - pb[0]!) * 1000 + (pa[1]! - pb[1]!);
}

describe('uWebSockets.js builds', () => {
  it.each(BUILDS)('$package: pinned as the table says, and its Linux binaries need the glibc it lists', (build) => {
    const root = path.dirname(require.resolve(build.package));
    expect(packageJson.dependencies[build.package]).toBe(build.version);
    expect(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version).toBe(build.version);
    for (const [major, abi] of Object.entries(NODE_ABI)) {
      for (const arch of ['x64', 'arm64']) {
        const binary = path.join(root, `uws_linux_${arch}_${abi}.node`);
        expect({ major, arch, glibc: newestGlibcSymbol(binary) }).toEqual({ major, arch, glibc: build.glibc[Number(major)] });
      }
    }
  });

  it('package.json `engines` admits exactly the Node majors the table covers', () => {
    expect(packageJson.engines.node).toBe(Object.keys(NODE_ABI).map((major) => `^${major}`).join(' || '));
  });

  it('this process gets the first build in the table whose binary its glibc can load', () => {
    const major = Number(process.versions.node.split('.')[0]);
    expect(NODE_ABI[major]).toBe(process.versions.modules);
    const glibc = glibcVersion()!;
    const expected = BUILDS.find((b) => compare(b.glibc[major]!, glibc) <= 0);
    expect(expected, `no build in the table serves Node ${major} on glibc ${glibc}`).toBeDefined();
    const loaded = loadUws();
    expect(loaded.build.package).toBe(expected!.package);
    expect(typeof loaded.uws.App).toBe('function');
  });

  it('where no build loads, the error names this runtime, what each build said, and every combination that works', () => {
    const runtime = { node: 'v99.1.0', abi: '999', platform: 'linux', arch: 'x64', glibc: '2.31' };
    expect(() => loadUws(BUILDS, runtime)).toThrow(
      'No uWebSockets.js build loads on Node v99.1.0 (ABI 999) on linux-x64, glibc 2.31. The builds on the npm ' +
        'registry serve Node 20 and 22 on glibc ≥ 2.27, Node 24 on glibc ≥ 2.38 (Linux x64/arm64); Node 20, 22, 24 on ' +
        'macOS (x64, arm64) and Windows x64; see docs/node-support.md. Tried: ' +
        '@btc-vision/uwebsockets.js@20.57.0: no binary for linux-x64 ABI 999; @based/uws@6.0.1: no binary for linux-x64 ABI 999',
    );
  });

  it('a build that is not installed is skipped, and named if nothing else loads', () => {
    const missing = { package: 'uws-build-not-installed', version: '0.0.0', glibc: {} };
    expect(loadUws([missing, ...BUILDS]).build).toBe(loadUws().build);
    expect(() => loadUws([missing])).toThrow('Tried: uws-build-not-installed@0.0.0: not installed');
  });

  it('a binary that exists but does not load is reported with its loader error', () => {
    // Another Node's binary: refused for its ABI, or first for the glibc it needs where that is older.
    const other = Object.values(NODE_ABI).find((abi) => abi !== process.versions.modules)!;
    const runtime = { node: process.version, abi: other, platform: process.platform, arch: process.arch };
    let message = '';
    try {
      loadUws(BUILDS.slice(0, 1), runtime);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(new RegExp(`Tried: @btc-vision/uwebsockets\\.js@20\\.57\\.0: .*uws_linux_x64_${other}\\.node`));
  });
});
