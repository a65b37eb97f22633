/**
 * The longest time to live a key may be given: a rule of the API, enforced by the server and
 * checked by the CLI before it sends (here, outside src/server, so that the CLI need not load it).
 */
export const TTL_MS_MAX = 365 * 24 * 3600 * 1000;
