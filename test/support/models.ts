/** What a running service says about its trained model (/metrics), and waiting for it to change. */
import type { Reply, RunningServer } from './server.js';

/** Every worker's value of a `{worker="…"}` gauge, e.g. model_version. */
export function perWorker(metricsText: string, name: string): number[] {
  return [...metricsText.matchAll(new RegExp(`^${name}\\{worker="\\d+"\\} (\\S+)$`, 'gm'))].map((m) => Number(m[1]));
}

/** Each worker's model_version (the id of the trained model in force; 0 before any). */
export async function modelVersions(server: RunningServer): Promise<number[]> {
  return perWorker((await server.get('/metrics')).text, 'model_version');
}

/** The `serves` label of model_served for `model`, per worker. */
export function servesOf(metricsText: string, model: string): string[] {
  return [...metricsText.matchAll(new RegExp(`^model_served\\{worker="\\d+",model="${model}",serves="([^"]*)"\\} 1$`, 'gm'))].map((m) => m[1]!);
}

/** Polls until `done` holds (every 100 ms), failing with `what` and the server's log after `timeoutMs`. */
export async function until<T>(server: RunningServer, what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(value)}):\n${server.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until every worker (`workers` of them) serves a trained model newer than `than`; returns its id. */
export async function untilModelAfter(server: RunningServer, than: number, workers = 2): Promise<number> {
  const versions = await until(server, `model_version > ${than} on every worker`, () => modelVersions(server),
    (v) => v.length === workers && v.every((x) => x > than && x === v[0]));
  return versions[0]!;
}

/** The content ids of a recommendations reply. */
export const idsOf = (r: Reply): number[] => r.json.recommendations.map((x: { content_id: number }) => x.content_id);
