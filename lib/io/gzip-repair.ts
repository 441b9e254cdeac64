/**
 * Repair of an existing gzip file before a GzipWriter appends to it (issue 9, point 6; docs/DESIGN.md §4).
 *
 * It runs before the writer's first open of an existing file, and only ever cuts a torn TAIL:
 * bytes after the last whole member that are the prefix of one member (they start with the
 * gzip magic, are under 64 KiB, and hold no second member header), which
 * is what a crash or a full disk leaves. A trailing EOF member from an earlier clean close is
 * dropped too, so the file ends with one EOF member. Damage anywhere else (a bad member header
 * in the middle, bytes that are no gzip) deletes nothing: the file is renamed, byte for byte, to
 * `<file>.damaged-<time>`, new rows start a fresh file, and `W_DAMAGED` names both and the offset.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { RowlogWarning } from '../core/warnings.js';
import { BGZF_EOF, isBgzfHeaderAt, isGzip } from '../format/bgzf.js';
import { scanMembers } from './bgzf-file.js';
import { readAt } from './read-at.js';

/** The largest BGZF member: BSIZE is a uint16 of (size − 1). */
const MAX_MEMBER = 65536;

/**
 * True when `rest` (the bytes after the last whole member) is the prefix of ONE member: what a
 * crash mid-write leaves. Anything else is damage that must not be cut.
 */
export function isTornTail(rest: Buffer): boolean {
  if (rest.length >= MAX_MEMBER) return false;
  if (!isGzip(rest)) return false;
  for (let p = rest.indexOf(0x1f, 1); p >= 0; p = rest.indexOf(0x1f, p + 1)) {
    if (isBgzfHeaderAt(rest, p)) return false; // a second member starts here: the first is damaged, not torn
  }
  try {
    zlib.gunzipSync(rest);
    return false; // a whole member whose header scanMembers could not read: damaged, its rows intact
  } catch {
    // does not inflate to its end: cut short (or damaged inside, and then no intact row is lost)
  }
  if (rest.length >= 18 && isBgzfHeaderAt(rest, 0)) return rest.readUInt16LE(16) + 1 > rest.length;
  return rest.length < 18; // a header cut short
}

/** What {@link repairGzip} did. */
export interface RepairResult {
  /** Bytes cut from a torn tail (0 when none). */
  cut: number;
  /** Where the file was set aside because of damage before its tail (then a fresh file starts). */
  setAside?: { to: string; offset: number; size: number };
}

/**
 * Prepares `path` for appending: truncates a torn tail and a trailing EOF member; sets a file
 * damaged before its tail aside (renamed, never changed). Files that are not BGZF throughout
 * but start as gzip (e.g. written by the `gzip` command) are left as they are: appending
 * members to any gzip still gives a valid multi-member gzip. `onWarning` gets `W_DAMAGED`.
 */
export function repairGzip(path: string, onWarning?: (w: RowlogWarning) => void): RepairResult {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { cut: 0 };
    throw err;
  }
  let damagedAt = -1;
  let size = 0;
  let cut = 0;
  try {
    size = fs.fstatSync(fd).size;
    if (size === 0) return { cut: 0 };
    const scan = scanMembers(fd, size);
    if (!scan.bgzf) {
      if (scan.wholeEnd === 0 && !isGzip(readAt(fd, 0, 3))) damagedAt = 0; // not gzip at all: appending would not give a gzip
      if (damagedAt < 0) return { cut: 0 };
    } else {
      let end = scan.wholeEnd;
      if (end < size) {
        const rest = readAt(fd, end, end + Math.min(size - end, MAX_MEMBER));
        if (size - end < MAX_MEMBER && isTornTail(rest)) cut = size - end;
        else damagedAt = end;
      }
      if (damagedAt < 0) {
        const last = scan.members.at(-1);
        if (last !== undefined && last.offset + last.size === end && last.size === BGZF_EOF.length) {
          if (readAt(fd, last.offset, end).equals(BGZF_EOF)) end = last.offset;
        }
        if (end < size) fs.ftruncateSync(fd, end);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  if (damagedAt < 0) return { cut };
  const to = `${path}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  fs.renameSync(path, to);
  onWarning?.({
    code: 'W_DAMAGED',
    message: `${path}: damaged gzip data at byte ${damagedAt} of ${size}; the file was set aside untouched as ${to} and new rows go to a fresh ${path}`,
  });
  return { cut: 0, setAside: { to, offset: damagedAt, size } };
}
