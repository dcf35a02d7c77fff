/** POST /recommendations/jobs, GET …/{job_id}, GET …/{job_id}/results, DELETE …/{job_id}. */
import { jobJson, type BatchJobs } from '../service/batch-jobs.js';
import { Exchange, type WireContext } from './exchange.js';
import { admit, type Access, type Guards } from './guards.js';
import { JOB_MAX_BODY_BYTES, parseJobBody, parseJobId, parseResultsQuery } from './job-params.js';
import { parseQuery } from './params.js';
import { readBody } from './request-body.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

export function jobRoutes(app: TemplatedApp, ctx: WireContext, guards: Guards, jobs: BatchJobs): void {
  app.post('/recommendations/jobs', (res, req) => {
    const ex = new Exchange(res, 'jobs', 'POST', ctx, req);
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    readBody(res, req, ex, JOB_MAX_BODY_BYTES, (body) => {
      let request: ReturnType<typeof parseJobBody>;
      try {
        request = parseJobBody(body);
      } catch (err) {
        return ex.fail(err);
      }
      admit(ex, guards, 'write', authorization, client, () => {
        ex.deadline();
        jobs.submit(request).then(
          (job) => ex.send(202, JSON.stringify({ job_id: job.id, status: job.status, total_users: job.total_users })),
          (err: unknown) => ex.fail(err),
        );
      });
    });
  });

  /** A route on one job: the id (and query) read synchronously, then `run` once admitted. */
  const onJob = (method: 'GET' | 'DELETE', access: Access, run: (ex: Exchange, id: string, query: Map<string, string>) => void) =>
    (res: HttpResponse, req: HttpRequest) => {
      const ex = new Exchange(res, 'jobs', method, ctx, req);
      const rawId = req.getParameter(0) ?? '';
      const rawQuery = req.getQuery();
      const authorization = req.getHeader('authorization');
      const client = guards.limit ? guards.clientOf(res, req) : '';
      let id: string;
      let query: Map<string, string>;
      try {
        id = parseJobId(rawId);
        query = parseQuery(rawQuery);
      } catch (err) {
        return ex.fail(err);
      }
      admit(ex, guards, access, authorization, client, () => {
        ex.deadline();
        run(ex, id, query);
      });
    };

  app.get('/recommendations/jobs/:job_id', onJob('GET', 'read', (ex, id) => {
    jobs.status(id).then(
      (job) => ex.send(200, jobJson(job)),
      (err: unknown) => ex.fail(err),
    );
  }));

  app.del('/recommendations/jobs/:job_id', onJob('DELETE', 'write', (ex, id) => {
    jobs.cancel(id).then(
      (job) => ex.send(202, jobJson(job)),
      (err: unknown) => ex.fail(err),
    );
  }));

  app.get('/recommendations/jobs/:job_id/results', onJob('GET', 'read', (ex, id, query) => {
    let page: ReturnType<typeof parseResultsQuery>;
    try {
      page = parseResultsQuery(query);
    } catch (err) {
      return ex.fail(err);
    }
    jobs.results(id, page.cursor, page.limit).then(
      ({ resultsJson, nextCursor }) => ex.send(200, `{"results":${resultsJson},"next_cursor":${JSON.stringify(nextCursor)}}`),
      (err: unknown) => ex.fail(err),
    );
  }));
}
