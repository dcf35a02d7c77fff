/** Worker-thread entry of a training run (model-trainer.ts): lowest CPU priority, one answer, exit. */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { connect } from '../data/db.js';
import type { ThreadReply } from './background-thread.js';
import { runTraining, type TrainingOutcome } from './model-training.js';

export interface TrainingThreadInput {
  databaseUrl: string;
  share: number;
  nice: number;
}

const input = workerData as TrainingThreadInput;
try {
  os.setPriority(Math.max(0, Math.min(19, input.nice)));
} catch {
  // Not permitted here (some containers): training runs at normal priority.
}
const sql = connect(input.databaseUrl, { max: 2, application: 'recommendation-service-training', keepOpen: true });
let reply: ThreadReply<TrainingOutcome>;
try {
  reply = { ok: true, outcome: await runTraining(sql, input.share, (message) => parentPort!.postMessage({ progress: message })) };
} catch (err) {
  const e = err as { message?: string; code?: string };
  reply = { ok: false, message: e.message ?? String(err), ...(e.code ? { code: e.code } : {}) };
}
await sql.end({ timeout: 1 });
parentPort!.postMessage(reply);
