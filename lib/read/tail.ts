/**
 * `tail`: the last rows of a `.jsonl` or `.jsonl.gz`, then (follow) each new row (docs/DESIGN.md §6).
 *
 * A blocked-gzip file (written by rowlog) is read from its end: {@link scanMembers} finds every
 * member boundary from the headers alone, and only the last members needed for N lines are
 * inflated. Any other gzip (e.g. from the `gzip` command) falls back to one streamed decode.
 * Only whole lines are ever returned: a member still being written (torn) or a line without
 * its `\n` waits until it is complete.
 *
 * Following polls `fs.stat` every `pollMs` (fs.watch misses events on some filesystems). A
 * file that shrinks (truncated) or whose path now names another inode (deleted and recreated,
 * rotated) is read again from its beginning; a path that disappears is waited for.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';
import { BGZF_EOF, gunzipTolerant, isGzip, scanMembers } from '../format/bgzf.js';
import type { MemberScan } from '../format/bgzf.js';
import { numberOption } from '../core/options.js';
import { lineToRow } from '../format/parse-lines.js';
import { readAt } from '../io/read-at.js';

/** Options of {@link tailLines} and {@link tail}. */
export interface TailOptions {
  /** Rows to show from the end first (an integer ≥ 0, or Infinity for all). @default 10 */
  lines?: number;
  /** Keep reading as the file grows; survive truncation and replacement (new inode). @default false */
  follow?: boolean;
  /** How often to look for growth when following (ms). @default 100 */
  pollMs?: number;
  /** Stops following. */
  signal?: AbortSignal;
}

/** How a file is read: plain text, blocked gzip (member by member), or any other gzip (whole decode). */
type Kind = 'plain' | 'bgzf' | 'gzip';

/** One open file being tailed. */
interface Source {
  fd: number;
  ino: number;
  dev: number;
  /** Undecided while the file is empty. */
  kind: Kind | undefined;
  /** plain: bytes up to the end of the last whole line read; bgzf: end of the last member read; gzip: unused. */
  offset: number;
  /** Size when last read: following reads again only when it changes. */
  size: number;
  /** gzip: decoded bytes already returned (up to the last `\n`). */
  textDone: number;
  /** bgzf: decoded bytes after the last `\n` of the members read (a line continued in the next member). */
  pending: Buffer;
}

/** Compressed bytes inflated per batch when reading a BGZF file forward. */
const CHUNK = 4 << 20;

function open(path: string): Source {
  const fd = fs.openSync(path, 'r');
  const st = fs.fstatSync(fd);
  return { fd, ino: st.ino, dev: st.dev, kind: undefined, offset: 0, size: 0, textDone: 0, pending: Buffer.alloc(0) };
}

function reset(src: Source): void {
  Object.assign(src, { kind: undefined, offset: 0, size: 0, textDone: 0, pending: Buffer.alloc(0) });
}

function countNewlines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

/** The whole lines of `buf` (without their `\n`) and the bytes after the last one. */
function splitLines(buf: Buffer): { lines: string[]; rest: Buffer } {
  const cut = buf.lastIndexOf(10);
  if (cut < 0) return { lines: [], rest: buf };
  return { lines: buf.subarray(0, cut).toString('utf8').split('\n'), rest: buf.subarray(cut + 1) };
}

/** The last `n` whole lines of `buf`; its first line is left out unless `fromStart` (it may be the end of a longer one). */
function lastLines(buf: Buffer, n: number, fromStart: boolean): string[] {
  const { lines } = splitLines(buf);
  if (!fromStart) lines.shift();
  return lines.slice(Math.max(0, lines.length - n));
}

/** Decides how to read a non-empty file: gzip magic → BGZF when its members say so, else plain text. */
function detect(src: Source, size: number): Kind | undefined {
  if (src.kind !== undefined || size < 2) return src.kind; // one byte cannot be a whole line either
  const head = readAt(src.fd, 0, 2);
  if (!isGzip(head)) return (src.kind = 'plain');
  return (src.kind = scanMembers(src.fd, size).bgzf ? 'bgzf' : 'gzip');
}

type Member = MemberScan['members'][number];

/** Where reading continues after members [0, j): the end of member j − 1, or its start if it is the last member and the empty EOF member. */
function endAfter(members: Member[], j: number): number {
  const m = members[j - 1];
  if (m === undefined) return 0;
  return j === members.length && m.size === BGZF_EOF.length ? m.offset : m.offset + m.size;
}

/** The decoded text of members [i, j) of the open file. */
function inflate(fd: number, members: Member[], i: number, j: number): Buffer {
  const first = members[i] as Member;
  const last = members[j - 1] as Member;
  return gunzipTolerant(readAt(fd, first.offset, last.offset + last.size)).data;
}

/**
 * Streams the decoded text of the first `end` bytes of any gzip to `onData`; stops quietly
 * where the data is cut short or corrupt (a file still being written).
 */
async function gunzipStream(fd: number, end: number, onData: (chunk: Buffer) => void): Promise<void> {
  const gz = zlib.createGunzip();
  const decoding = (async () => {
    for await (const chunk of gz) onData(chunk as Buffer);
  })();
  try {
    for (let pos = 0; pos < end && !gz.destroyed; pos += 1 << 20) {
      if (!gz.write(readAt(fd, pos, Math.min(end, pos + (1 << 20))))) await once(gz, 'drain');
    }
    gz.end();
    await decoding;
  } catch {
    // torn or corrupt end: keep what decoded
  } finally {
    gz.destroy();
    await decoding.catch(() => {});
  }
}

/** Any gzip, decoded from the start: the last `n` new whole lines after the `src.textDone` bytes already returned. */
async function readGzip(src: Source, size: number, n: number): Promise<string[]> {
  let seen = 0;
  let carry = Buffer.alloc(0);
  const out: string[] = [];
  await gunzipStream(src.fd, size, (chunk) => {
    const skip = Math.max(0, Math.min(chunk.length, src.textDone - seen));
    seen += chunk.length;
    if (skip === chunk.length) return;
    const { lines, rest } = splitLines(carry.length > 0 ? Buffer.concat([carry, chunk.subarray(skip)]) : chunk.subarray(skip));
    for (const line of lines) out.push(line);
    if (out.length > 2 * n + 1024) out.splice(0, out.length - n);
    carry = Buffer.from(rest);
  });
  src.textDone = Math.max(src.textDone, seen - carry.length);
  return out.slice(Math.max(0, out.length - n));
}

/** First read: the last `n` whole lines; afterwards `src` points past them. */
async function readLast(src: Source, size: number, n: number): Promise<string[]> {
  src.size = size;
  const kind = detect(src, size);
  if (kind === 'gzip') return readGzip(src, size, n);
  if (kind === 'plain') {
    const parts: Buffer[] = [];
    let pos = size;
    let newlines = 0;
    while (pos > 0 && newlines <= n) {
      const start = Math.max(0, pos - (64 << 10));
      const part = readAt(src.fd, start, pos);
      parts.unshift(part);
      newlines += countNewlines(part);
      pos = start;
    }
    const buf = Buffer.concat(parts);
    src.offset = pos + buf.lastIndexOf(10) + 1;
    return lastLines(buf, n, pos === 0);
  }
  if (kind === 'bgzf') {
    const { members } = scanMembers(src.fd, size);
    const texts: Buffer[] = [];
    let newlines = 0;
    let i = members.length;
    while (i > 0 && newlines <= n) {
      const text = inflate(src.fd, members, i - 1, i);
      texts.unshift(text);
      newlines += countNewlines(text);
      i--;
    }
    const buf = Buffer.concat(texts);
    src.pending = Buffer.from(splitLines(buf).rest);
    src.offset = endAfter(members, members.length);
    return lastLines(buf, n, i === 0);
  }
  return [];
}

/** Following: batches of the whole lines added since the last read. */
async function* readNew(src: Source, size: number): AsyncGenerator<string[]> {
  src.size = size;
  const kind = detect(src, size);
  if (kind === 'gzip') {
    yield await readGzip(src, size, Infinity);
  } else if (kind === 'plain') {
    const buf = readAt(src.fd, src.offset, size);
    const { lines, rest } = splitLines(buf);
    src.offset += buf.length - rest.length;
    yield lines;
  } else if (kind === 'bgzf') {
    const scan = scanMembers(src.fd, size, src.offset); // only what was appended since
    const from = scan.members.findIndex((m) => m.offset === src.offset);
    if (!scan.bgzf || (from < 0 && src.offset !== scan.wholeEnd)) {
      // not where we left it: the file was rewritten in place; start over
      reset(src);
      yield await readLast(src, size, Infinity);
      return;
    }
    const { members } = scan;
    for (let i = from < 0 ? members.length : from; i < members.length; ) {
      let j = i + 1;
      for (let bytes = (members[i] as Member).size; j < members.length && bytes < CHUNK; j++) bytes += (members[j] as Member).size;
      const { lines, rest } = splitLines(Buffer.concat([src.pending, inflate(src.fd, members, i, j)]));
      src.pending = Buffer.from(rest);
      src.offset = endAfter(members, j);
      yield lines;
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
  const { signal } = opts;
  let src = open(path);
  try {
    yield await readLast(src, fs.fstatSync(src.fd).size, n);
    while (opts.follow === true && signal?.aborted !== true) {
      try {
        await sleep(pollMs, undefined, { signal });
      } catch {
        return; // aborted
      }
      const st = statPath(path);
      if (st === undefined) continue; // deleted: wait for the file to come back
      if (st.ino !== src.ino || st.dev !== src.dev) {
        let next: Source;
        try {
          next = open(path);
        } catch {
          continue; // gone again between stat and open
        }
        fs.closeSync(src.fd);
        src = next;
        yield* readNew(src, fs.fstatSync(src.fd).size);
      } else if (st.size < src.offset || (src.kind === 'gzip' && st.size < src.size)) {
        reset(src); // truncated: read it again from the start
        yield* readNew(src, st.size);
      } else if (st.size !== src.size) {
        yield* readNew(src, st.size);
      }
    }
  } finally {
    fs.closeSync(src.fd);
  }
}

/**
 * The last `lines` lines of a `.jsonl` or `.jsonl.gz` (whole lines only, without their `\n`),
 * then (follow) each new line. For a BGZF file (written by rowlog) it walks member headers with
 * `scanMembers` and inflates ONLY the last members needed for N lines, never the whole file;
 * any other gzip falls back to a full (streamed) decode. A torn/in-progress last member is not
 * read until it is whole. A missing file throws (ENOENT) when iteration starts.
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
