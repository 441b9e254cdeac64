/**
 * Bounded reads of an existing CSV table file (docs/DESIGN.md §4: reopening never reads a whole file):
 * its header (bounded reads until the first record ends), a torn last row (the last
 * {@link TAIL_BYTES}), decoded chunks (plain bytes, or whole BGZF members for `.csv.gz`), and the
 * temp files an interrupted rewrite left beside it. Also the header line the sink writes.
 *
 * Limit: the torn-row check reads the last {@link TAIL_BYTES} and assumes a record starts after
 * the first line end in that window; a quoted multi-line cell spanning that point could mislead
 * it (files of at most TAIL_BYTES are checked from their start, exactly).
 */
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import zlib from 'node:zlib';
import { readAt } from '../lib/io/read-at.js';
import { gunzipTolerant } from '../lib/format/bgzf.js';
import { scanMembers } from '../lib/io/bgzf-file.js';
import { field } from '../lib/format/csv-line.js';
import { isBlank, scanRecords, unquote } from '../lib/format/csv-parse.js';
import { extrasFor, writeColumns } from './csv-sidecar.js';
import type { ColumnsEntry } from './csv-sidecar.js';
import type { FileHandle } from './row-format.js';

/** How much of a file's end is read to find a torn last row. */
export const TAIL_BYTES = 1024 * 1024;
/** Bound on the bytes read to find the header (a header longer than this is not looked for). */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

/** Temp files earlier rewrites of `file` left behind (a kill mid-rewrite), given its folder's names. */
export function leftovers(file: string, names: readonly string[]): string[] {
  const base = path.basename(file);
  return names
    .filter((n) => n.startsWith(`${base}.`) && /^(?:\d+|rewrite|columns|old)\.tmp$/.test(n.slice(base.length + 1)))
    .map((n) => path.join(path.dirname(file), n));
}

/**
 * Reads the decoded bytes of table file `fd` from raw offset `pos`, at most about `max` of them
 * and never past `end`: plain bytes, or whole BGZF members inflated (`.gz`). `next` is where the
 * next read starts (== pos: nothing whole to read yet). Plain bytes are read `into` a buffer
 * the caller reuses, when given.
 */
export function readChunk(fd: number, pos: number, end: number, max: number, gz: boolean, into?: Buffer): { data: Buffer; next: number } {
  if (pos >= end) return { data: Buffer.alloc(0), next: pos };
  if (!gz) {
    const want = Math.min(max, end - pos);
    const buf = into !== undefined && into.length >= want ? into.subarray(0, want) : Buffer.allocUnsafe(want);
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    return { data: buf.subarray(0, n), next: pos + n };
  }
  // BGZF members are ≤ 64 KiB and hold ≤ 65280 input bytes: ask for about `max` of input.
  const scan = scanMembers(fd, Math.min(end, pos + Math.max(65536, Math.floor(max / 2))), pos);
  if (scan.members.length === 0) {
    if (scan.bgzf) return { data: Buffer.alloc(0), next: pos };
    // A gzip not written by rowlog (no BSIZE): no member boundaries to step by, read the rest.
    return { data: gunzipTolerant(readAt(fd, pos, end)).data, next: end };
  }
  return { data: zlib.gunzipSync(readAt(fd, pos, scan.wholeEnd)), next: scan.wholeEnd };
}

/**
 * The header of a table file: its first non-blank record, found by bounded reads from its start
 * (never the whole file). Undefined for an empty file or one of blank lines.
 */
export function readHeader(file: string, gz: boolean): string[] | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const decoder = new StringDecoder('utf8');
    let text = '';
    let pos = 0;
    while (pos < size && text.length < MAX_HEADER_BYTES) {
      const chunk = readChunk(fd, pos, size, 64 * 1024, gz);
      if (chunk.next === pos) break;
      pos = chunk.next;
      text += decoder.write(chunk.data);
      const header = firstRecord(text, pos >= size);
      if (header !== undefined) return header;
    }
    return firstRecord(text + decoder.end(), true);
  } finally {
    fs.closeSync(fd);
  }
}

/** The first non-blank record of `text` (a BOM skipped), unquoted; undefined until it is whole. */
function firstRecord(text: string, final: boolean): string[] | undefined {
  let header: string[] | undefined;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  // Skip blank lines first, so a file of blank lines is not scanned record by record.
  while (text.charCodeAt(i) === 10 || text.charCodeAt(i) === 13) i++;
  const lf = text.indexOf('\n', i);
  const stop = text.indexOf('"', i) < 0 && lf >= 0 ? lf + 1 : text.length; // the usual header: one line
  scanRecords(
    text.slice(0, stop),
    i,
    (fields) => {
      if (header === undefined && !isBlank(fields)) header = fields.map(unquote);
    },
    final || stop < text.length,
  );
  return header;
}

/**
 * A torn last row of a plain CSV: where the last whole record ends, when bytes follow it (a
 * crash or a full disk cut the last write). Reads at most {@link TAIL_BYTES} from the end.
 */
export function tornTail(file: string): { keep: number; size: number } | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return undefined;
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = readAt(fd, start, size);
    let from = 0;
    if (start > 0) {
      from = buf.indexOf(10) + 1;
      if (from === 0) return undefined; // one record longer than the window: leave it
    }
    const text = buf.subarray(from).toString('utf8');
    const probe = text.endsWith('\r') ? `${text}\n` : text; // a CR-only line end is whole
    const first = start === 0 && text.charCodeAt(0) === 0xfeff ? 1 : 0;
    const rest = Math.min(scanRecords(probe, first, () => {}, false).rest, text.length);
    if (rest >= text.length) return undefined;
    return { keep: start + from + Buffer.byteLength(text.slice(0, rest)), size };
  } finally {
    fs.closeSync(fd);
  }
}

/** The CSV header line of `columns` (each an RFC 4180 field, as csvSink writes them). */
export function headerLine(columns: readonly string[]): string {
  return `${columns.map(field).join(',')}\n`;
}

/**
 * Readies a table file a CSV sink opens for the first time: leftovers of an interrupted rewrite
 * (`names`: the file's folder) are deleted; an existing file has a torn last row removed (plain
 * CSV only: a `.gz` had its torn member cut by the gzip writer, and members hold whole lines;
 * `onTorn` gets the W_TORN_ROW message), its header read and the sidecar entry for that header
 * found; a stale sidecar is removed. Idempotent, so an EMFILE is retried from the start.
 */
export function reopenCsv(
  file: FileHandle,
  names: readonly string[],
  onTorn: (message: string) => void,
): { header: string[] | undefined; entry: ColumnsEntry | undefined } {
  for (const p of leftovers(file.path, names)) {
    try {
      fs.rmSync(p, { force: true });
    } catch {
      // not a file (or not ours to remove): a rewrite that needs the name will say so
    }
  }
  let header: string[] | undefined;
  let entry: ColumnsEntry | undefined;
  if (file.appended) {
    if (!file.gz) repairTail(file, onTorn);
    header = readHeader(file.path, file.gz);
    if (header !== undefined) entry = extrasFor(file.path, header);
  }
  if (entry === undefined) writeColumns(file.path, [], false); // stale, if any (an unlink: no fd needed)
  return { header, entry };
}

/** Removes a last row cut short (no line end; a crash or a full disk), with a warning. */
function repairTail(file: FileHandle, onTorn: (message: string) => void): void {
  const torn = tornTail(file.path);
  if (torn === undefined) return;
  file.truncate(torn.keep);
  const n = torn.size - torn.keep;
  onTorn(`${file.path}: removed a torn last row (${n} byte${n === 1 ? '' : 's'} at offset ${torn.keep} without a line end, cut by a crash or a full disk)`);
}
