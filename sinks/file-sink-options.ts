/**
 * The options every file sink takes (docs/DESIGN.md §4), their defaults, and their checks in the one
 * option-error vocabulary (lib/core/options.ts): {@link resolveFileSinkOptions} turns what the
 * user gave into the values sinks/file-sink.ts runs on, or throws `ERR_INVALID_OPTION` naming the option.
 */
import { numberOption, objectOption, optionError } from '../lib/core/options.js';
import { BGZF_MAX_INPUT, DEFAULT_GZIP_LEVEL } from '../lib/format/bgzf.js';
import { DEFAULT_MAX_QUEUED_BYTES } from '../lib/io/file-writer.js';

/** Options every file sink takes. */
export interface FileSinkOptions {
  /** Write every Entry into this one file. Exactly one of `path` and `dir`. */
  path?: string;
  /** Write one file per table: `<dir>/<table><ext>` (a `/` in a table name makes a sub-folder). */
  dir?: string;
  /** File name ending in `dir` mode. @default the format's (`.jsonl`) */
  ext?: string;
  /**
   * Size of a batch in bytes: a batch is handed to the disk before a row could take it past
   * this (with `.gz`, each batch becomes one gzip member; BGZF members hold at most 65280
   * bytes); a longer row goes alone. @default 65280
   */
  flushBytes?: number;
  /** …or when its first row has waited this long (ms). @default 250 */
  flushIntervalMs?: number;
  /**
   * Bound on bytes waiting for the disk. Past it the sink writes synchronously, so a training
   * loop that never yields to the event loop slows down instead of filling memory; no row is
   * dropped. @default 2097152 (2 MiB)
   */
  maxQueuedBytes?: number;
  /**
   * zlib level of `.gz` output. @default DEFAULT_GZIP_LEVEL (1: lib/format/bgzf.ts says why)
   */
  gzipLevel?: number;
  /** `'flush'`: fsync after each batch (each gzip member), for power-loss safety. @default 'none' */
  durability?: 'none' | 'flush';
  /**
   * Most files this sink keeps open at once (`dir` mode writes one file per table). Files past
   * it are closed when idle, least recently used first, and reopened to append; a file waiting
   * for a slot keeps its rows queued (within `maxQueuedBytes`), never blocking `log.row()`.
   * 128 lets the logger's two default file sinks (256 fds) and two more file sinks (TensorBoard,
   * Parquet) fit Linux's default soft limit of 1,024 with half of it left to the program (data
   * loaders, sockets, CUDA); any table count works, a run with more active tables than this
   * reopens files more often. @default 128
   */
  maxOpenFiles?: number;
}

const DEFAULTS = Object.freeze({
  flushBytes: BGZF_MAX_INPUT,
  flushIntervalMs: 250,
  maxQueuedBytes: DEFAULT_MAX_QUEUED_BYTES,
  gzipLevel: DEFAULT_GZIP_LEVEL,
  maxOpenFiles: 128,
});

/** {@link FileSinkOptions} checked, with their defaults filled in. */
export interface ResolvedFileSinkOptions {
  readonly path: string | undefined;
  readonly dir: string | undefined;
  readonly ext: string;
  readonly flushBytes: number;
  readonly flushIntervalMs: number;
  readonly maxQueuedBytes: number;
  readonly gzipLevel: number;
  /** durability 'flush'. */
  readonly fsync: boolean;
  /** The files are blocked gzip: the path (or, in `dir` mode, the ending) ends in `.gz`. */
  readonly gz: boolean;
  readonly maxOpenFiles: number;
}

/** Checks `opts` (throwing the option error of the first bad one) and fills in the defaults; `ext` is the format's. */
export function resolveFileSinkOptions(opts: FileSinkOptions, ext: string): ResolvedFileSinkOptions {
  objectOption(opts);
  if ((opts.path === undefined) === (opts.dir === undefined)) {
    throw optionError('type', 'path', 'give exactly one of path (one file) and dir (one file per table)');
  }
  for (const k of ['path', 'dir', 'ext'] as const) {
    if (opts[k] !== undefined && (typeof opts[k] !== 'string' || opts[k] === '')) {
      throw optionError('type', k, `must be a non-empty string (got ${String(opts[k])})`);
    }
  }
  const flushBytes = numberOption(opts.flushBytes ?? DEFAULTS.flushBytes, 'flushBytes', { min: 1 });
  const flushIntervalMs = numberOption(opts.flushIntervalMs ?? DEFAULTS.flushIntervalMs, 'flushIntervalMs', { min: 0 });
  const maxQueuedBytes = numberOption(opts.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes, 'maxQueuedBytes', { min: 0 });
  const gzipLevel = numberOption(opts.gzipLevel ?? DEFAULTS.gzipLevel, 'gzipLevel', { min: 0, max: 9, integer: true });
  const durability = opts.durability ?? 'none';
  if (durability !== 'none' && durability !== 'flush') {
    throw optionError('range', 'durability', `must be 'none' or 'flush' (got ${String(durability)})`);
  }
  const maxOpenFiles = numberOption(opts.maxOpenFiles ?? DEFAULTS.maxOpenFiles, 'maxOpenFiles', { min: 1, integer: true });
  const fileExt = opts.ext ?? ext;
  return {
    path: opts.path,
    dir: opts.dir,
    ext: fileExt,
    flushBytes,
    flushIntervalMs,
    maxQueuedBytes,
    gzipLevel,
    fsync: durability === 'flush',
    gz: (opts.path ?? fileExt).endsWith('.gz'),
    maxOpenFiles,
  };
}
