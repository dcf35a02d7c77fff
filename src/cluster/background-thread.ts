/**
 * A job on a worker thread of its own that answers one message and exits: its memory is gone with it, and
 * its CPU priority is its own (the thread lowers it first: on Linux a thread's niceness is per thread).
 */
import { Worker } from 'node:worker_threads';

export type ThreadReply<O> = { ok: true; outcome: O } | { ok: false; message: string; code?: string };

export interface BackgroundThread<O> {
  result: Promise<O>;
  terminate(): Promise<void>;
}

export function startThread<I, O>(entry: URL, input: I, name: string, onProgress?: (message: string) => void): BackgroundThread<O> {
  const worker = new Worker(entry, { workerData: input, name });
  let terminated = false;
  const result = new Promise<O>((resolve, reject) => {
    let reply: ThreadReply<O> | undefined;
    // Progress lines ({ progress }) may come first; the reply is the message that is not one.
    worker.on('message', (m: ThreadReply<O> | { progress: string }) => {
      if ('progress' in m) onProgress?.(m.progress);
      else reply = m;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (reply?.ok) resolve(reply.outcome);
      else if (reply) reject(Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {}));
      else if (terminated) reject(Object.assign(new Error(`${name} terminated`), { code: 'ABORTED' }));
      else reject(new Error(`${name} thread exited with code ${code} before answering`));
    });
  });
  return {
    result,
    terminate: async () => {
      terminated = true;
      await worker.terminate();
    },
  };
}
