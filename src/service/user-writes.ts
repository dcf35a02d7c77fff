/**
 * Writes that change what a user may be recommended besides watch events: their profile (tier and country
 * decide availability) and "not interested" dismissals. Each is answered only once no process of this
 * instance, and no other instance, serves a list of the user's computed before it (the watch event's
 * guarantee, RecommendationService.afterUserWrite).
 */
import type { UserRepo } from '../data/user-repo.js';
import type { RecommendationService } from './recommendation-service.js';

type Upsert = Awaited<ReturnType<UserRepo['upsert']>>;
type Dismissal = Awaited<ReturnType<UserRepo['dismiss']>>['record'];

export class UserWrites {
  constructor(
    private readonly users: UserRepo,
    private readonly recommendations: Pick<RecommendationService, 'afterUserWrite'>,
  ) {}

  /** Creates or updates the user; a new user gets recommendations at once (no history: genre preference 0.1). */
  async put(userId: number, fields: Parameters<UserRepo['upsert']>[1]): Promise<Omit<Upsert, 'lsn'>> {
    const { lsn, ...result } = await this.users.upsert(userId, fields);
    // Even a new user: a lookup that raced the insert may have cached nothing, but a 404 is never cached either.
    await this.recommendations.afterUserWrite(userId, lsn);
    return result;
  }

  async dismiss(userId: number, contentId: number): Promise<Dismissal> {
    const { record, lsn } = await this.users.dismiss(userId, contentId);
    await this.recommendations.afterUserWrite(userId, lsn);
    return record;
  }

  async undismiss(userId: number, contentId: number): Promise<void> {
    const { lsn } = await this.users.undismiss(userId, contentId);
    await this.recommendations.afterUserWrite(userId, lsn);
  }
}
