/**
 * The only module that loads uWebSockets.js. It loads the native binary directly and fails fast with a
 * clear message when this Node ABI has none: the package would otherwise fall back silently to a slow
 * JavaScript implementation. Swapping the build is a change to PACKAGE below.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as UwsTypes from '@trufflesuite/uws-js-unofficial';

const PACKAGE = '@trufflesuite/uws-js-unofficial';

export type HttpRequest = UwsTypes.HttpRequest;
export type HttpResponse = UwsTypes.HttpResponse;
export type ListenSocket = UwsTypes.us_listen_socket;
/** The package's typings lack `close()`, which closes every socket of the app. */
export type TemplatedApp = UwsTypes.TemplatedApp & { close(): void };

type UwsModule = typeof UwsTypes;

function load(): UwsModule {
  const require = createRequire(import.meta.url);
  const root = path.dirname(require.resolve(`${PACKAGE}/package.json`));
  const binary = path.join(root, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try {
    return require(binary) as UwsModule;
  } catch (err) {
    throw new Error(
      `uWebSockets.js has no native build for Node ${process.version} (ABI ${process.versions.modules}, ` +
        `${process.platform}-${process.arch}) in ${PACKAGE}: ${(err as Error).message}. Use Node 20.`,
    );
  }
}

const uws = load();

export const App = uws.App as () => TemplatedApp;
export const closeListenSocket = uws.us_listen_socket_close;
