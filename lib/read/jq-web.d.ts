/**
 * A minimal local type declaration for `jq-web` (jq compiled to WebAssembly; the package ships
 * no types). The CommonJS module resolves to a Promise-like of `{ json, raw }`.
 */
declare module 'jq-web' {
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
  const jq: PromiseLike<JqWeb>;
  export default jq;
}
