/**
 * `tail`: the last rows of a `.jsonl` or `.jsonl.gz`, then (follow) each new row (docs/DESIGN.md §6).
 *
 * A blocked-gzip file (written by rowlog) is read from its end: {@link scanMembersResync} finds
 * every member boundary from the headers alone, and only the last members needed for N lines
 * are inflated. Any other gzip (e.g. from the `gzip` command) falls back to one streamed decode
 * (lib/read/decode.ts's). Only whole lines are ever returned: a member still being written
 * (torn) or a line without its `\n` waits until it is complete.
 *
 * **Bounded on any input** (issue 11 §1). The first read looks back through at most
 * `maxLookbackBytes` of decoded text (32 MiB by default) for its lines: when fewer than N lines
 * fit, the lines that fit are shown and `onNotice` hears `lookback` (the CLI says the last line
 * is too long). One member is inflated at a time with zlib's `maxOutputLength` set to what the
 * member says it holds (lib/format/bgzf.ts {@link inflateMember}), so even a member of
 * repeated bytes (64 KiB inflating to 63 MB) cannot allocate past its ~67 MB ceiling. Following
 * splits new text with lib/format/line-split.ts's LineSplitter under the same bound: a longer
 * line is skipped and reported (`long-line`), never held.
 *
 * **Damage** follows lib/read/decode.ts's rule: a damaged blocked-gzip member (a bad header,
 * BSIZE, data or CRC) is skipped, the next valid member is found by its header and proved by its
 * CRC, the rows of every intact member are read, and `onNotice` hears `damaged` with the offset.
 *
 * **Not a regular file** (a FIFO, a character device): read as a stream, once, from where it
 * is; the last N lines when the writer closes, or with `follow` every line as it comes.
 *
 * Following polls `fs.stat` every `pollMs` (fs.watch misses events on some filesystems). A
 * file that shrinks (truncated) or whose path now names another inode (deleted and recreated,
 * rotated) is read again from its beginning; a path that disappears is waited for, and with
 * `waitForFile` a path that does not exist yet too (as `tail -F`; `waiting` is noticed once).
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BGZF_EOF, inflateMember, inflateMemberPieces, isGzip } from '../format/bgzf.js';
import { scanMembersResync, startsDamagedBgzf } from '../io/bgzf-file.js';
import type { MemberScan } from '../io/bgzf-file.js';
import { booleanOption, functionOption, numberOption } from '../core/options.js';
import { countNewlines } from '../format/line-split.js';
import { lineToRow } from '../format/parse-lines.js';
import { damaged, LastLines, Lines } from './tail-lines.js';
import type { Ctx, TailNotice } from './tail-lines.js';
import { streamBatches } from './tail-stream.js';
import { readAt } from '../io/read-at.js';
import { decoded } from './decode.js';

export type { TailNotice } from './tail-lines.js';

/** Options of {@link tailLines} and {@link tail}. */
export interface TailOptions {
  /** Rows to show from the end first (an integer ≥ 0, or Infinity for all that fit in `maxLookbackBytes`). @default 10 */
  lines?: number;
  /** Keep reading as the file grows; survive truncation and replacement (new inode). @default false */
  follow?: boolean;
  /** How often to look for growth when following (ms). @default 100 */
  pollMs?: number;
  /**
   * Decoded bytes looked back through from the end for the first lines, and the longest line
   * followed: what tail holds in memory at most (besides one member being inflated). An
   * integer ≥ 1. @default 33554432 (32 MiB)
   */
  maxLookbackBytes?: number;
  /** With `follow`, a file that does not exist yet is waited for (then read from its start) instead of throwing ENOENT. @default false */
  waitForFile?: boolean;
  /** Hears damage skipped, lines too long to show, and waiting for the file (see {@link TailNotice}). */
  onNotice?: (notice: TailNotice) => void;
  /** Stops following. */
  signal?: AbortSignal;
}

/** The default of `maxLookbackBytes`. */
export const DEFAULT_MAX_LOOKBACK_BYTES = 32 << 20;

/** How a file is read: plain text, blocked gzip (member by member), or any other gzip (whole decode). */
type Kind = 'plain' | 'bgzf' | 'gzip';

type Member = MemberScan['members'][number];

/** One open file being tailed. */
interface Source {
  fd: number;
  ino: number;
  dev: number;
  /** Undecided while the file is empty. */
  kind: Kind | undefined;
  /** plain: bytes read into `lines`; bgzf: end of the last member read; gzip: unused. */
  offset: number;
  /** Size when last read: following reads again only when it changes. */
  size: number;
  /** gzip: decoded bytes read into `lines`. */
  textDone: number;
  /** The partial line (and the lines split, until taken). */
  lines: Lines;
  /** bgzf: the first and last bytes of the member that ends at `offset`, to tell growth from a rewrite in place. */
  mark: { offset: number; bytes: Buffer } | undefined;
}

/** Compressed bytes read per batch when reading a BGZF file forward (~10 MB of text). */
const CHUNK = 1 << 20;
/** Plain bytes read per batch when reading forward. */
const PLAIN_CHUNK = 4 << 20;

function open(path: string, ctx: Ctx): Source {
  const fd = fs.openSync(path, 'r');
  const st = fs.fstatSync(fd);
  return { fd, ino: st.ino, dev: st.dev, kind: undefined, offset: 0, size: 0, textDone: 0, lines: new Lines(ctx), mark: undefined };
}

function reset(src: Source, ctx: Ctx): void {
  Object.assign(src, { kind: undefined, offset: 0, size: 0, textDone: 0, lines: new Lines(ctx), mark: undefined });
}

/** Decides how to read a non-empty file: gzip magic → BGZF when its members say so; else BGZF when a member soon follows (its first one damaged); else plain text. */
function detect(src: Source, size: number): Kind | undefined {
  if (src.kind !== undefined || size < 2) return src.kind; // one byte cannot be a whole line either
  const head = readAt(src.fd, 0, 2);
  if (isGzip(head)) return (src.kind = scanMembersResync(src.fd, size).bgzf ? 'bgzf' : 'gzip');
  if (startsDamagedBgzf(src.fd, size)) return (src.kind = 'bgzf');
  return (src.kind = 'plain');
}

/** Where reading continues after members [0, j): the end of member j − 1, or its start if it is the last member and the empty EOF member. */
function endAfter(members: Member[], j: number): number {
  const m = members[j - 1];
  if (m === undefined) return 0;
  return j === members.length && m.size === BGZF_EOF.length ? m.offset : m.offset + m.size;
}

/** The first 18 and last 8 bytes of member `m`: enough to know it is still there. */
function markOf(fd: number, m: Member): Buffer {
  return Buffer.concat([readAt(fd, m.offset, m.offset + 18), readAt(fd, m.offset + m.size - 8, m.offset + m.size)]);
}

/** Remembers the member that ends at `src.offset` (none when it is 0). */
function setMark(src: Source, members: Member[]): void {
  const m = members.findLast((x) => x.offset + x.size === src.offset);
  src.mark = m === undefined ? undefined : { offset: m.offset, bytes: markOf(src.fd, m) };
}

/**
 * The lines of a window of decoded text that ends at the end of the input: whole lines, its
 * first piece left out unless `fromStart` (it may be the end of a longer line); the bytes after
 * the last `\n` go to `src.lines` as the partial line.
 */
function fromWindow(src: Source, buf: Buffer, fromStart: boolean, ctx: Ctx): string[] {
  const cut = buf.lastIndexOf(10);
  let lines: string[] = [];
  // the first piece is decoded only when it is a whole line (a long one's end is never decoded)
  const start = fromStart ? 0 : buf.indexOf(10) + 1;
  if (cut >= 0 && start <= cut) {
    lines = buf.toString('utf8', start, cut).split('\n');
    lines = lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  }
  src.lines.fragment = cut < 0 && !fromStart;
  src.lines.write(buf.subarray(cut + 1));
  const shown = lines.slice(Math.max(0, lines.length - ctx.n));
  if (ctx.n > 0 && shown.length < ctx.n && !fromStart) ctx.notify({ type: 'lookback', limit: ctx.limit, shown: shown.length });
  return shown;
}

/** Members whose text (ISIZE) is larger than this are inflated in pieces, never held whole. */
const WHOLE_MEMBER_TEXT = 4 << 20;

/** ISIZE: the text length a member says it holds. */
const textSize = (member: Buffer): number => (member.length >= 4 ? member.readUInt32LE(member.length - 4) : 0);

/** The last `keep` bytes of a member's text (all of it when shorter), or undefined when it is damaged. */
async function memberTail(member: Buffer, keep: number): Promise<Buffer | undefined> {
  if (textSize(member) <= WHOLE_MEMBER_TEXT) {
    const text = inflateMember(member);
    return text === undefined || text.length <= keep ? text : Buffer.from(text.subarray(text.length - keep));
  }
  let pieces: Buffer[] = [];
  let held = 0;
  const ok = await inflateMemberPieces(member, (piece) => {
    pieces.push(piece);
    held += piece.length;
    while (pieces.length > 1 && held - (pieces[0] as Buffer).length >= keep) held -= (pieces.shift() as Buffer).length;
  });
  if (!ok) return undefined;
  const text = Buffer.concat(pieces, held);
  pieces = [];
  return text.length <= keep ? text : Buffer.from(text.subarray(text.length - keep));
}

/** A member's text into `lines`: whole when small, else in pieces as it inflates (then a damaged one may have given some). False when damaged. */
async function memberInto(member: Buffer, lines: Lines): Promise<boolean> {
  if (textSize(member) <= WHOLE_MEMBER_TEXT) {
    const text = inflateMember(member);
    if (text !== undefined) lines.write(text);
    return text !== undefined;
  }
  return inflateMemberPieces(member, (piece) => lines.write(piece));
}

/** Chunks of the open file's bytes `[start, end)`. */
async function* fileChunks(fd: number, start: number, end: number): AsyncGenerator<Buffer> {
  for (let pos = start; pos < end; pos += 1 << 20) yield readAt(fd, pos, Math.min(end, pos + (1 << 20)));
}

/**
 * Any gzip, decoded from the start by lib/read/decode.ts: batches of the new whole lines after
 * the `src.textDone` bytes already read. A torn end yields what decodes up to its last line.
 */
async function* gzipBatches(src: Source, size: number, ctx: Ctx): AsyncGenerator<string[]> {
  let seen = 0;
  const text = decoded(fileChunks(src.fd, 0, size), { maxLineBytes: ctx.limit, onDamaged: (d) => damaged(ctx, d.offset, d.length) });
  for await (const chunk of text) {
    const skip = Math.max(0, Math.min(chunk.length, src.textDone - seen));
    seen += chunk.length;
    if (skip === chunk.length) continue;
    src.lines.write(chunk.subarray(skip));
    src.textDone = seen;
    const lines = src.lines.take();
    if (lines.length > 0) yield lines;
  }
}

/** First read: the last `n` whole lines (within the look-back); afterwards `src` points past them. */
async function readLast(src: Source, size: number, ctx: Ctx): Promise<string[]> {
  src.size = size;
  const kind = detect(src, size);
  const { n, limit } = ctx;
  if (kind === 'gzip') {
    const last = new LastLines(n, limit);
    src.lines.onLong = () => last.clear();
    try {
      for await (const lines of gzipBatches(src, size, ctx)) last.push(lines);
    } finally {
      src.lines.onLong = undefined;
    }
    const shown = last.lines;
    if (n > 0 && shown.length < n && last.cut) ctx.notify({ type: 'lookback', limit, shown: shown.length });
    return shown;
  }
  if (kind === 'plain') {
    const parts: Buffer[] = [];
    let pos = size;
    let bytes = 0;
    let newlines = 0;
    while (pos > 0 && newlines <= n && bytes < limit) {
      const start = Math.max(0, pos - (64 << 10), pos - (limit - bytes));
      const part = readAt(src.fd, start, pos);
      parts.unshift(part);
      newlines += countNewlines(part);
      bytes += part.length;
      pos = start;
    }
    src.offset = size;
    return fromWindow(src, Buffer.concat(parts), pos === 0, ctx);
  }
  if (kind === 'bgzf') {
    const { members, damaged: bad } = scanMembersResync(src.fd, size);
    for (const d of bad) damaged(ctx, d.offset, d.length);
    const texts: Buffer[] = []; // from the last member back (reversed once: unshift per member is quadratic in tiny members)
    let bytes = 0;
    let newlines = 0;
    let whole = true;
    /** Damage follows the text being read: its open last line (a piece) is dropped, never joined to what follows. */
    let damageAfter = false;
    let i = members.length;
    while (i > 0 && newlines <= n && bytes < limit) {
      const m = members[--i] as Member;
      const next = members[i + 1];
      if (next !== undefined && m.offset + m.size !== next.offset) damageAfter = true; // a gap the header walk skipped
      const member = readAt(src.fd, m.offset, m.offset + m.size);
      // only what the look-back allows (a large member is inflated in pieces, its last ones kept)
      let part = await memberTail(member, limit - bytes);
      if (part === undefined) {
        damaged(ctx, m.offset, m.size);
        damageAfter = true;
        continue;
      }
      if (part.length < textSize(member)) whole = false;
      if (damageAfter) {
        const nl = part.lastIndexOf(10);
        damageAfter = nl === -1; // all of it a piece of that line: the one before is too
        part = part.subarray(0, nl + 1);
      }
      texts.push(part);
      bytes += part.length;
      newlines += countNewlines(part);
    }
    src.offset = endAfter(members, members.length);
    setMark(src, members);
    return fromWindow(src, Buffer.concat(texts.reverse()), i === 0 && whole, ctx);
  }
  return [];
}

/** Following: batches of the whole lines added since the last read. */
async function* readNew(src: Source, size: number, ctx: Ctx): AsyncGenerator<string[]> {
  src.size = size;
  const kind = detect(src, size);
  if (kind === 'gzip') {
    yield* gzipBatches(src, size, ctx);
  } else if (kind === 'plain') {
    while (src.offset < size) {
      const buf = readAt(src.fd, src.offset, Math.min(size, src.offset + PLAIN_CHUNK));
      if (buf.length === 0) break;
      src.offset += buf.length;
      src.lines.write(buf);
      yield src.lines.take();
    }
  } else if (kind === 'bgzf') {
    const mark = src.mark;
    const moved = mark !== undefined && !markOf(src.fd, { offset: mark.offset, size: src.offset - mark.offset }).equals(mark.bytes);
    const scan = moved ? undefined : scanMembersResync(src.fd, size, src.offset); // only what was appended since
    if (scan === undefined || !scan.bgzf) {
      // not what we read: the file was rewritten in place; start over
      reset(src, ctx);
      yield* readNew(src, size, ctx);
      return;
    }
    for (const d of scan.damaged) damaged(ctx, d.offset, d.length);
    const { members } = scan;
    let end = src.offset;
    for (let i = 0; i < members.length; ) {
      let j = i + 1;
      for (let bytes = (members[i] as Member).size; j < members.length && bytes < CHUNK; j++) bytes += (members[j] as Member).size;
      const first = members[i] as Member;
      const last = members[j - 1] as Member;
      const buf = readAt(src.fd, first.offset, last.offset + last.size);
      for (let k = i; k < j; k++) {
        const m = members[k] as Member;
        if (m.offset !== end) src.lines.breakLine(); // damage the header walk skipped
        end = m.offset + m.size;
        if (!(await memberInto(buf.subarray(m.offset - first.offset, m.offset - first.offset + m.size), src.lines))) {
          damaged(ctx, m.offset, m.size);
          src.lines.breakLine();
        }
      }
      src.offset = endAfter(members, j);
      setMark(src, members);
      yield src.lines.take();
      i = j;
    }
  }
}

function statPath(path: string): fs.Stats | undefined {
  try {
    return fs.statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The same as {@link tailLines} in batches: first one batch (possibly empty) with the last
 * `lines` lines, then (follow) one batch per read of new lines. Writing a batch at once is
 * what the CLI does; the first batch always comes, so several files can be started in order.
 */
export async function* tailBatches(path: string, opts: TailOptions = {}): AsyncGenerator<string[]> {
  const n = numberOption(opts.lines ?? 10, 'lines', { min: 0, integer: true, infinite: true });
  const pollMs = numberOption(opts.pollMs ?? 100, 'pollMs', { min: 1, max: 2 ** 31 - 1 });
  const limit = numberOption(opts.maxLookbackBytes ?? DEFAULT_MAX_LOOKBACK_BYTES, 'maxLookbackBytes', { min: 1, integer: true });
  const follow = booleanOption(opts.follow, 'follow', false);
  const waitForFile = booleanOption(opts.waitForFile, 'waitForFile', false);
  const onNotice = functionOption<(notice: TailNotice) => void>(opts.onNotice, 'onNotice');
  const { signal } = opts;
  const ctx: Ctx = { n, limit, notify: (notice) => onNotice?.(notice), reported: new Set(), signal };
  const pause = async (): Promise<boolean> => {
    try {
      await sleep(pollMs, undefined, { signal });
      return true;
    } catch {
      return false; // aborted
    }
  };

  let st = statPath(path);
  let src: Source;
  let appeared = false;
  if (st === undefined && follow && waitForFile) {
    // As `tail -F`: wait for the file, then read it from its start.
    yield [];
    ctx.notify({ type: 'waiting' });
    let opened: Source | undefined;
    while (opened === undefined) {
      while (st === undefined) {
        if (!(await pause())) return;
        st = statPath(path);
      }
      if (!st.isFile()) return yield* streamBatches(path, true, ctx);
      try {
        opened = open(path, ctx);
      } catch {
        st = undefined; // gone again between stat and open: wait again
      }
    }
    src = opened;
    appeared = true;
  } else if (st !== undefined && !st.isFile() && !st.isDirectory()) {
    return yield* streamBatches(path, follow, ctx);
  } else {
    src = open(path, ctx); // a missing file throws ENOENT here
  }
  try {
    if (appeared) yield* readNew(src, fs.fstatSync(src.fd).size, ctx); // all of it is new
    else yield await readLast(src, fs.fstatSync(src.fd).size, ctx);
    while (follow && signal?.aborted !== true) {
      if (!(await pause())) return;
      const now = statPath(path);
      if (now === undefined || !now.isFile()) continue; // deleted: wait for the file to come back
      if (now.ino !== src.ino || now.dev !== src.dev) {
        let next: Source;
        try {
          next = open(path, ctx);
        } catch {
          continue; // gone again between stat and open
        }
        fs.closeSync(src.fd);
        src = next;
        yield* readNew(src, fs.fstatSync(src.fd).size, ctx);
      } else if (now.size < src.offset || (src.kind === 'gzip' && now.size < src.size)) {
        reset(src, ctx); // truncated: read it again from the start
        yield* readNew(src, now.size, ctx);
      } else if (now.size !== src.size) {
        yield* readNew(src, now.size, ctx);
      }
    }
  } finally {
    fs.closeSync(src.fd);
  }
}

/**
 * The last `lines` lines of a `.jsonl` or `.jsonl.gz` (whole lines only, without their `\n`),
 * then (follow) each new line. For a BGZF file (written by rowlog) it walks member headers with
 * `scanMembersResync` and inflates ONLY the last members needed for N lines, never the whole
 * file; any other gzip falls back to a full (streamed) decode. A torn/in-progress last member is
 * not read until it is whole. A missing file throws (ENOENT) when iteration starts, unless
 * `follow` and `waitForFile`.
 */
export async function* tailLines(path: string, opts: TailOptions = {}): AsyncGenerator<string> {
  for await (const batch of tailBatches(path, opts)) yield* batch;
}

/** {@link tailLines}, parsed into row objects (lines that are not JSON objects are skipped). */
export async function* tail(path: string, opts: TailOptions = {}): AsyncGenerator<Record<string, unknown>> {
  for await (const line of tailLines(path, opts)) {
    const row = lineToRow(line);
    if (row !== undefined) yield row;
  }
}
