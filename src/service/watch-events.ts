/**
 * Watch events in bulk (POST /events): one transaction for all of them, then every affected user's cached
 * lists invalidated with the watch event's guarantee (RecommendationService.afterUsersWrite): once `record`
 * resolves, no process of this instance, and no other instance, serves a list of theirs that predates it.
 */
import type { EventsRepo } from '../data/events-repo.js';
import type { EventsResult, WatchEventInput } from '../domain/types.js';
import type { RecommendationService } from './recommendation-service.js';

export class WatchEvents {
  constructor(
    private readonly events: EventsRepo,
    private readonly recommendations: Pick<RecommendationService, 'afterUsersWrite'>,
  ) {}

  async record(events: readonly WatchEventInput[]): Promise<EventsResult> {
    const { users, lsn } = await this.events.addWatches(events);
    await this.recommendations.afterUsersWrite(users, lsn);
    return { events: events.length, users: users.length };
  }
}
