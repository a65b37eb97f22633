import { HomeKvError } from "../errors.ts";
import { compareKeys, prefixEnd } from "../storage/mvcc/key-order.ts";
import { checkKey, type Limits } from "./limits.ts";

/** The ways a request names keys: one key, a prefix, or a range [start, end). Empty means not given. */
export interface KeySelector {
  key?: string;
  prefix: string;
  start: string;
  end: string;
}

/**
 * Turns the key, prefix or range of a Scan or Watch into one range [start, end), checking that at
 * most one form is given (`choices` says which the request allows, for the message), that every key
 * is within the limits, and that the range is not inverted. An open edge is undefined.
 */
export function resolveKeyRange(
  selector: KeySelector,
  limits: Limits,
  options: { choices: string; required?: string },
): { start?: string; end?: string } {
  const ranged = selector.start !== "" || selector.end !== "";
  const given = [selector.key && "key", selector.prefix !== "" && "prefix", ranged && "start/end"].filter(
    (name) => name,
  );
  if (given.length > 1) throw new HomeKvError("E_INVALID", `give ${options.choices}, not ${given.join(" and ")}`);
  if (given.length === 0 && options.required) throw new HomeKvError("E_INVALID", options.required);
  if (selector.key) {
    checkKey(selector.key, limits);
    return { start: selector.key, end: `${selector.key}\0` };
  }
  if (selector.prefix !== "") {
    checkKey(selector.prefix, limits);
    return { start: selector.prefix, end: prefixEnd(selector.prefix) };
  }
  if (selector.start !== "") checkKey(selector.start, limits);
  if (selector.end !== "") checkKey(selector.end, limits);
  if (selector.start !== "" && selector.end !== "" && compareKeys(selector.start, selector.end) >= 0) {
    throw new HomeKvError(
      "E_INVALID",
      `end ${JSON.stringify(selector.end)} is not after start ${JSON.stringify(selector.start)}: the range [start, end) is empty or inverted`,
    );
  }
  return { start: selector.start || undefined, end: selector.end || undefined };
}
