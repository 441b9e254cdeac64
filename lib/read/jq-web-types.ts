/**
 * The types of `jq-web` (jq compiled to WebAssembly; the package ships none), as rowlog uses it:
 * the CommonJS module resolves to a Promise-like of `{ json, raw }`. A module of its own (not an
 * ambient `declare module`) so the declarations rowlog publishes carry them: a project that
 * type-checks against rowlog's `.d.ts` files needs no declaration for jq-web.
 */

/** What `raw()` throws: jq's exit code (2 usage, 3 compile error, 5 runtime error) and stderr. */
export interface JqWebError extends Error {
  exitCode?: number;
  stderr?: string;
}

/** The loaded module. */
export interface JqWeb {
  /** Runs jq synchronously over `input` text with command-line `flags`; stdout text (undefined when empty). */
  raw(input: string, filter: string, flags?: string[]): string | undefined;
  /** Runs `filter` over one JSON value. */
  json(input: unknown, filter: string): unknown;
}
