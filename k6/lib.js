// Shared settings of this service's k6 scripts. Every script reads:
//   BASE_URL  the service (default http://localhost:8080)
//   SCALE     multiplies every stage duration (default 1 = the seed's durations; 0.2 for a quick run)
//   VUS       peak virtual users (each script has the seed's default)
export const BASE_URL = (__ENV.BASE_URL || 'http://localhost:8080').replace(/\/$/, '');
const SCALE = Number(__ENV.SCALE || 1);

/** ramp up, hold, ramp down: the seed's three-stage shape, scaled by SCALE. */
export function stages(rampS, holdS, downS, vus) {
  const d = (s) => `${Math.max(1, Math.round(s * SCALE))}s`;
  return [
    { duration: d(rampS), target: vus },
    { duration: d(holdS), target: vus },
    { duration: d(downS), target: 0 },
  ];
}

export function vus(fallback) {
  return Number(__ENV.VUS || fallback);
}

/** The parsed JSON body, or null when it is not JSON. */
export function json(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

export const pick = (list) => list[Math.floor(Math.random() * list.length)];
