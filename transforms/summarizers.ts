/**
 * Class summarizers (docs/DESIGN.md §3): how instances of a class are summarized, declared once by the
 * program (`declareSummarizer(Complex, (v, p, dst) => { dst[`${p}.r`] = v.r; … })`) and matched
 * through the prototype chain by the flattening (./flatten.ts), before any built-in rule.
 */
import { optionError } from '../lib/core/options.js';

/**
 * Writes the summary of `value` into `dst` under keys starting with `prefix` (e.g.
 * `dst[`${prefix}.r`] = value.r`); `recurse(nested, key)` summarizes a nested value with the
 * normal rules. Values put in `dst` that are not Scalars are summarized too.
 */
export type Summarizer<T> = (
  value: T,
  prefix: string,
  dst: Record<string, unknown>,
  recurse: (value: unknown, key: string) => void,
) => void;

// Keyed by prototype, so a summarizer declared on a base class matches its subclasses.
const summarizers = new WeakMap<object, Summarizer<never>>();

/** Declares how instances of `cls` (and of its subclasses) are summarized. */
export function declareSummarizer<T extends object>(
  cls: abstract new (...args: never[]) => T,
  fn: Summarizer<T>,
): void {
  if (typeof cls !== 'function' || typeof cls.prototype !== 'object') {
    throw optionError('type', 'declareSummarizer class', 'must be a class or constructor function');
  }
  if (typeof fn !== 'function') throw optionError('type', 'declareSummarizer summarizer', 'must be a function');
  summarizers.set(cls.prototype as object, fn as Summarizer<never>);
}

/** The summarizer declared for `proto` or the nearest prototype above it. */
export function findSummarizer(proto: object | null): Summarizer<unknown> | undefined {
  for (let p = proto; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const fn = summarizers.get(p);
    if (fn !== undefined) return fn as Summarizer<unknown>;
  }
  return undefined;
}
