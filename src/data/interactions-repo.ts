/**
 * What training and the offline evaluation read: every watch event (per user, oldest first), every title
 * (the catalog load's rows) and each user's audience and dismissals. Bulk reads for background work, not
 * the request path: one row per user with the events as arrays (20M event rows cost more to produce and
 * receive than the data itself), streamed in batches.
 */
import type { Sql } from './db.js';
import { CATALOG_SQL } from './catalog.js';
import { buildInteractions, type Interactions, type UserEvents } from '../recommenders/interactions.js';
import { tierIndex, type Audience, type Candidate } from '../domain/types.js';

const EVENTS_SQL = `
SELECT user_id,
       array_agg(content_id ORDER BY watched_at, id) AS items,
       array_agg((extract(epoch FROM watched_at) * 1000)::float8 ORDER BY watched_at, id) AS times
FROM user_watch_history
GROUP BY user_id
ORDER BY user_id`;

const USERS_SQL = `
SELECT u.id, u.subscription_type AS tier, u.country,
       ARRAY(SELECT d.content_id FROM user_dismissals d WHERE d.user_id = u.id) AS dismissed
FROM users u`;

/** Users per fetched batch of the events cursor. */
const BATCH = 2000;

export interface TrainingData {
  events: Interactions;
  titles: Candidate[];
}

/** Every title and every watch event; item indices follow the titles, so a title nobody watched has one. */
export async function readTrainingData(sql: Sql, onProgress?: (users: number) => void): Promise<TrainingData> {
  const titles = await sql.unsafe<Candidate[]>(CATALOG_SQL);
  const users: UserEvents[] = [];
  await sql.unsafe<{ user_id: number; items: number[]; times: number[] }[]>(EVENTS_SQL).cursor(BATCH, (rows) => {
    for (const r of rows) users.push({ userId: Number(r.user_id), contentIds: r.items, timesMs: r.times });
    onProgress?.(users.length);
  });
  return { events: buildInteractions(users, titles.map((t) => Number(t.id))), titles: [...titles] };
}

export async function readAudiences(sql: Sql): Promise<Map<number, { audience: Audience; dismissed: number[] }>> {
  const rows = await sql.unsafe<{ id: number; tier: string | null; country: string | null; dismissed: number[] }[]>(USERS_SQL);
  const out = new Map<number, { audience: Audience; dismissed: number[] }>();
  for (const r of rows) out.set(Number(r.id), { audience: { tier: tierIndex(r.tier), country: r.country }, dismissed: r.dismissed });
  return out;
}
