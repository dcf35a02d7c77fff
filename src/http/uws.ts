/**
 * The only module that loads uWebSockets.js. No single build on the npm registry serves every current Node
 * on every glibc, so it tries the redistributions in BUILDS, newest upstream first, and keeps the first whose
 * native binary loads here (docs/node-support.md says who publishes each and what was checked). It loads the
 * binary itself: a package's entry point would hide which one failed and why.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as UwsTypes from '@btc-vision/uwebsockets.js';

export type HttpRequest = UwsTypes.HttpRequest;
export type HttpResponse = UwsTypes.HttpResponse;
export type ListenSocket = UwsTypes.us_listen_socket;
export type TemplatedApp = UwsTypes.TemplatedApp;

type UwsModule = typeof UwsTypes;

/** One redistribution of uWebSockets.js on the npm registry. */
export interface UwsBuild {
  package: string;
  /** The exact version package.json pins. */
  version: string;
  /** Node major → the oldest glibc its Linux (x64, arm64) binary loads on; macOS and Windows need none. */
  glibc: Readonly<Record<number, string>>;
}

/** Node majors the service supports (package.json `engines`) and their native-module ABI. */
export const NODE_ABI: Readonly<Record<number, string>> = { 20: '115', 22: '127', 24: '137' };

/** Preference order: newest upstream first. test/unit/uws.test.ts checks each entry against its binaries. */
export const BUILDS: readonly UwsBuild[] = [
  {
    // uWS v20.57.0, built on Ubuntu 24.04.
    package: '@btc-vision/uwebsockets.js',
    version: '20.57.0',
    glibc: { 20: '2.38', 22: '2.38', 24: '2.38' },
  },
  {
    // uWS v20.51.0 built on Ubuntu 20.04; its Node 24 binary is v20.56.0's.
    package: '@based/uws',
    version: '6.0.1',
    glibc: { 20: '2.27', 22: '2.27', 24: '2.38' },
  },
];

/** What this process runs on, as the binaries' file names and the error message need it. */
export interface Runtime {
  node: string;
  abi: string;
  platform: string;
  arch: string;
  /** Read only when nothing loads (a process report costs a few ms); undefined off glibc. */
  glibc?: string;
}

const thisProcess: Runtime = {
  node: process.version,
  abi: process.versions.modules,
  platform: process.platform,
  arch: process.arch,
};

/** The C library's version as Node reports it; undefined on macOS, Windows and musl. */
export function glibcVersion(): string | undefined {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime;
}

/** Node majors with the oldest glibc some build serves each on, e.g. "Node 20 and 22 on glibc ≥ 2.27". */
function supportedCombinations(builds: readonly UwsBuild[] = BUILDS): string {
  const oldest = new Map<string, number[]>();
  for (const major of Object.keys(NODE_ABI).map(Number)) {
    const versions = builds.map((b) => b.glibc[major]).filter((v): v is string => v !== undefined);
    if (versions.length === 0) continue;
    const min = versions.reduce((a, b) => (compareVersions(a, b) <= 0 ? a : b));
    oldest.set(min, [...(oldest.get(min) ?? []), major]);
  }
  const linux = [...oldest]
    .sort(([a], [b]) => compareVersions(a, b))
    .map(([glibc, majors]) => `Node ${majors.join(' and ')} on glibc ≥ ${glibc}`)
    .join(', ');
  return `${linux} (Linux x64/arm64); Node ${Object.keys(NODE_ABI).join(', ')} on macOS (x64, arm64) and Windows x64`;
}

function compareVersions(a: string, b: string): number {
  const [pa, pb] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export interface Loaded {
  uws: UwsModule;
  build: UwsBuild;
  binary: string;
}

/** The first build in `builds` whose binary for `runtime` loads; otherwise an error naming what works. */
export function loadUws(builds: readonly UwsBuild[] = BUILDS, runtime: Runtime = thisProcess): Loaded {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const build of builds) {
    let root: string;
    try {
      // The package root via its entry point (its `exports` hide package.json); resolving runs nothing.
      root = path.dirname(require.resolve(build.package));
    } catch {
      failures.push(`${build.package}@${build.version}: not installed`);
      continue;
    }
    const binary = path.join(root, `uws_${runtime.platform}_${runtime.arch}_${runtime.abi}.node`);
    if (!existsSync(binary)) {
      failures.push(`${build.package}@${build.version}: no binary for ${runtime.platform}-${runtime.arch} ABI ${runtime.abi}`);
      continue;
    }
    try {
      return { uws: require(binary) as UwsModule, build, binary };
    } catch (err) {
      failures.push(`${build.package}@${build.version}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const glibc = runtime.platform === 'linux' ? (runtime.glibc ?? glibcVersion()) : undefined;
  const here = `Node ${runtime.node} (ABI ${runtime.abi}) on ${runtime.platform}-${runtime.arch}` +
    (runtime.platform === 'linux' ? `, ${glibc ? `glibc ${glibc}` : 'no glibc (musl?)'}` : '');
  throw new Error(
    `No uWebSockets.js build loads on ${here}. The builds on the npm registry serve ${supportedCombinations(builds)}; ` +
      `see docs/node-support.md. Tried: ${failures.join('; ')}`,
  );
}

/**
 * uWS reads its request-header limit from the environment once, when the binary loads: these builds default
 * to 4 KB and answer 431 beyond it, which refuses ordinary requests carrying large cookies or tokens. 64 KB
 * is what the service has always admitted; an operator's own UWS_HTTP_MAX_HEADERS_SIZE wins.
 */
export const MAX_HEADERS_BYTES = 64 * 1024;
process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(MAX_HEADERS_BYTES);
const loaded = loadUws();

/** Which redistribution serves this process (logged at start-up). */
export const uwsBuild = `${loaded.build.package}@${loaded.build.version}`;
export const App = loaded.uws.App;
export const closeListenSocket = loaded.uws.us_listen_socket_close;
