/**
 * Blocked gzip in files (docs/DESIGN.md §4, §6): the header walks that find every member of an
 * open file without inflating it (scanMembers for the writer's repair, which never skips
 * anything; scanMembersResync for readers, which skip damage), the search for the next valid
 * member, and the whole-lines read of a file being written. The bytes themselves (framing,
 * CRC, inflating one member) are lib/format/bgzf.ts's; this is the part that reads files.
 */
import fs from 'node:fs';
import {
  BGZF_HEADER,
  BGZF_MAX_MEMBER,
  GZIP_TRAILER,
  bcField,
  gunzipTolerant,
  isBgzfHeaderAt,
  isGzip,
  memberSize,
  nextMember,
} from '../format/bgzf.js';
import { readAt } from './read-at.js';

/** Result of {@link scanMembers}. */
export interface MemberScan {
  /** Every whole member from the start, in order. */
  members: Array<{ offset: number; size: number }>;
  /** Where the last whole member ends: truncating the file here repairs it. */
  wholeEnd: number;
  /** Bytes after `wholeEnd` are a member cut short (BSIZE points past the end) or not a member at all. */
  torn: boolean;
  /** Every member seen is BGZF. False when the scan met a plain gzip member (no `BC`) or the file does not start like gzip. */
  bgzf: boolean;
}

/**
 * Walks member headers of the open file `fd` (of `size` bytes) from `start` (the start of the
 * file, or a member boundary found before: a follower rescans only what was appended) WITHOUT
 * inflating: one small read per member, for its BSIZE. Stops at the first plain gzip member
 * (no `BC` subfield; `bgzf: false`) or at the first member that is torn: shorter than its
 * BSIZE says, a header cut short, or bytes after whole members that are not a gzip header.
 * A file whose first bytes (at `start`) are not gzip at all gives `bgzf: false`, never `torn`,
 * so a caller that repairs by truncating to `wholeEnd` cannot empty a foreign file.
 */
export function scanMembers(fd: number, size: number, start = 0): MemberScan {
  const members: MemberScan['members'] = [];
  const head = Buffer.alloc(BGZF_HEADER);
  const result = (torn: boolean, bgzf: boolean): MemberScan => ({ members, wholeEnd: pos, torn, bgzf });
  let pos = start;
  while (pos < size) {
    const n = fs.readSync(fd, head, 0, Math.min(BGZF_HEADER, size - pos), pos);
    const got = head.subarray(0, n);
    if (!isGzip(got)) return pos === start ? result(false, false) : result(true, true);
    if (n < 12) return result(true, true);
    if ((head[3]! & 4) === 0) return result(false, false);
    const xlen = head.readUInt16LE(10);
    if (12 + xlen > size - pos) return result(true, true);
    let extra = got.subarray(12, 12 + xlen);
    if (extra.length < xlen) {
      extra = Buffer.alloc(xlen);
      fs.readSync(fd, extra, 0, xlen, pos + 12);
    }
    const bsize = bcField(extra);
    if (bsize === undefined) return result(false, false);
    const memberSize = bsize + 1;
    if (memberSize < 12 + xlen + GZIP_TRAILER || memberSize > size - pos) return result(true, true);
    members.push({ offset: pos, size: memberSize });
    pos += memberSize;
  }
  return result(false, true);
}

/**
 * The text of the whole members of a (possibly growing) gzip file: a BGZF file is decoded up
 * to the end of its last whole member, so a reader racing the writer never sees a half
 * member; any other gzip is decoded tolerantly and cut after its last newline. Either way the
 * text holds only whole lines.
 */
export function readWholeLines(path: string): { text: string; truncated: boolean } {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const scan = scanMembers(fd, size);
    const { data, truncated } = gunzipTolerant(readAt(fd, 0, scan.bgzf ? scan.wholeEnd : size));
    const cut = data.lastIndexOf(10) + 1;
    return { text: data.subarray(0, cut).toString('utf8'), truncated: truncated || scan.torn || cut < data.length };
  } finally {
    fs.closeSync(fd);
  }
}

/** Bytes searched per read by {@link nextMemberInFile}; windows overlap by one largest member. */
const SEARCH_WINDOW = 1 << 20;

/**
 * {@link nextMember} over the open file `fd` (of `size` bytes): where the first valid BGZF member
 * at or after `from` starts (header, BSIZE and CRC all right), or -1 when none is whole before
 * `size`. Reads overlapping windows of 1 MiB, so memory stays bounded however far it searches.
 */
export function nextMemberInFile(fd: number, size: number, from: number): number {
  for (let pos = from; pos < size; pos += SEARCH_WINDOW) {
    const end = Math.min(size, pos + SEARCH_WINDOW + BGZF_MAX_MEMBER + BGZF_HEADER);
    const p = nextMember(readAt(fd, pos, end), 0);
    if (p !== -1) return pos + p;
    if (end === size) return -1;
  }
  return -1;
}

/** Result of {@link scanMembersResync}: {@link MemberScan} plus the damage skipped. */
export interface ResyncScan extends MemberScan {
  /** Stretches between members that hold no valid member (a damaged header or BSIZE), in order. */
  damaged: Array<{ offset: number; length: number }>;
}

/**
 * {@link scanMembers} for readers: the same header walk (no inflating), but bytes that are no
 * member header are **damage** when a valid member follows them. The walk resyncs there with
 * {@link nextMemberInFile} (searching from just after the previous member's start, so a
 * previous member whose BSIZE was damaged to point too far is found out and dropped too).
 * Bytes after the last member that hold no valid member are a torn end (`torn`, `wholeEnd`),
 * as in scanMembers. A member whose header is intact but whose data is not is found only when it
 * is inflated ({@link inflateMember}). `bgzf` is false only when the bytes at `start` are
 * a plain gzip member (no `BC` subfield). The writer's repair keeps using scanMembers, which
 * never skips anything (docs/DESIGN.md §4).
 */
export function scanMembersResync(fd: number, size: number, start = 0): ResyncScan {
  const members: MemberScan['members'] = [];
  const damaged: ResyncScan['damaged'] = [];
  let pos = start;
  let torn = false;
  while (pos < size) {
    const head = readAt(fd, pos, Math.min(size, pos + BGZF_HEADER));
    if (head.length === BGZF_HEADER && isBgzfHeaderAt(head, 0)) {
      const s = memberSize(head, 0);
      if (s >= BGZF_HEADER + GZIP_TRAILER && pos + s <= size) {
        members.push({ offset: pos, size: s });
        pos += s;
        continue;
      }
    } else if (pos === start && isGzip(head) && head.length >= 4 && (head[3]! & 4) === 0) {
      return { members, damaged, wholeEnd: pos, torn: false, bgzf: false }; // a plain gzip
    }
    const prev = members.at(-1);
    const adjacent = prev !== undefined && prev.offset + prev.size === pos;
    const next = nextMemberInFile(fd, size, adjacent ? prev.offset + 1 : pos + 1);
    if (next === -1) {
      torn = true;
      break;
    }
    if (adjacent && next < pos) {
      members.pop(); // its BSIZE pointed past the next member: it is damaged too
      damaged.push({ offset: prev.offset, length: next - prev.offset });
    } else {
      damaged.push({ offset: pos, length: next - pos });
    }
    pos = next;
  }
  return { members, damaged, wholeEnd: pos, torn, bgzf: true };
}

/** How far into a file that does not start like gzip {@link startsDamagedBgzf} looks for a member. */
const DAMAGED_START_SEARCH = 256 << 10;

/**
 * True when the open file `fd` does not start like gzip but a valid BGZF member (CRC-proved)
 * follows within its first 256 KiB: blocked gzip whose first member is damaged, not text. Readers
 * that choose by the first bytes (tail, ls) ask this before reading such a file as text.
 */
export function startsDamagedBgzf(fd: number, size: number): boolean {
  const head = readAt(fd, 0, 3);
  return !isGzip(head) && nextMemberInFile(fd, Math.min(size, DAMAGED_START_SEARCH), 1) !== -1;
}
