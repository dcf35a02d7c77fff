'use strict';
/**
 * autocannon setupRequest for worker-thread mode (`workers: N` takes a module path, not a closure): asks for
 * a different user on every request. The request carries `distinct: { first, count, limit, workers }`;
 * autocannon creates its N workers back to back, so their threadIds are consecutive and threadId mod N
 * gives each its own slot: worker w asks for first + (w + k·N) mod count and the workers never overlap.
 */
const { threadId } = require('node:worker_threads');

let n;
module.exports = function setupRequest(req) {
  const { first, count, limit, workers } = req.distinct;
  if (n === undefined) n = threadId % workers;
  const user = first + (n % count);
  n += workers;
  return { ...req, path: `/users/${user}/recommendations?limit=${limit}` };
};
