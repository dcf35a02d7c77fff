/**
 * Worker-thread entry of the similarity job (started by startSimilarityThread): lowers its own CPU
 * priority (on Linux a thread's niceness is its own), runs the job on a one-connection client, answers one
 * message and exits.
 */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { connect } from './db.js';
import { runSimilarityJob, type SimilarityThreadInput, type SimilarityThreadReply } from './similarity-job.js';

const input = workerData as SimilarityThreadInput;
try {
  os.setPriority(Math.max(0, Math.min(19, input.nice)));
} catch {
  // Not permitted here (some containers): the job runs at normal priority.
}

const sql = connect(input.databaseUrl, { max: 1, application: 'recommendation-service-similarity' });
let reply: SimilarityThreadReply;
try {
  reply = { ok: true, outcome: await runSimilarityJob(sql, input.options) };
} catch (err) {
  const e = err as { message?: string; code?: string };
  reply = { ok: false, message: e.message ?? String(err), ...(e.code ? { code: e.code } : {}) };
}
await sql.end({ timeout: 1 });
parentPort!.postMessage(reply);
