/**
 * Blocked gzip (BGZF, as in the SAM/BGZF spec and htslib's `bgzip`), docs/DESIGN.md §4.
 *
 * A `.gz` file written by rowlog is a series of complete gzip members. Each holds at most
 * {@link BGZF_MAX_INPUT} bytes of whole lines and its header carries the `BC` extra subfield,
 * whose BSIZE is the member's total size − 1 (uint16 LE); a clean close appends the empty
 * 28-byte {@link BGZF_EOF} member. Every gzip reader (`gzip -d`, `zcat`, Python's `gzip`,
 * `bgzip`) reads a multi-member file as the concatenation of its members.
 *
 * Why: crash safety and random access. After each member lands the file is a valid gzip, so a
 * crash loses at most the member being written, and BSIZE lets a header walk
 * (lib/io/bgzf-file.ts) find every member boundary by reading headers only. Repair is `truncate(file, wholeEnd)`; `tail`,
 * resume and parallel decompression never inflate the whole file.
 *
 * Layout of one member (all integers little-endian):
 * ```
 * 1f 8b 08 04 | MTIME 0 (4) | XFL 0 | OS ff | XLEN 6 (2) | 'B' 'C' | SLEN 2 (2) | BSIZE (2)
 * raw deflate data | CRC32 of the input (4) | ISIZE = input length (4)
 * ```
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { optionError } from '../core/options.js';

/** Largest input per member: htslib's 0xff00, so even incompressible input fits BSIZE (uint16). */
export const BGZF_MAX_INPUT = 65280;

/**
 * The zlib level of rowlog's `.gz` output unless `gzipLevel` says otherwise. Measured by
 * `npm run bench` on its rows: level 1 compresses 5.8× faster than level 6 for a file 35 % larger
 * (see README). Stated here only: the sinks, the gzip writer and the benchmarks' baseline use it.
 */
export const DEFAULT_GZIP_LEVEL = 1;

/** Largest member BSIZE can describe. */
export const BGZF_MAX_MEMBER = 65536;
/** Bytes of the fixed BGZF header (up to and including BSIZE). */
export const BGZF_HEADER = 18;
const HEADER = BGZF_HEADER;
/** Bytes of the trailer (CRC32, ISIZE). */
export const GZIP_TRAILER = 8;
const TRAILER = GZIP_TRAILER;

/** The 28-byte empty BGZF EOF member (exact bytes from the SAM/BGZF spec). */
export const BGZF_EOF: Buffer = Buffer.from('1f8b08040000000000ff0600424302001b0003000000000000000000', 'hex');

/** CRC-32 (IEEE, as in gzip) in plain JS: the fallback for Node < 20.15, which lacks `zlib.crc32`. */
export function crc32Js(data: Uint8Array, value = 0): number {
  const table = (crcTable ??= makeCrcTable());
  let crc = ~value;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

let crcTable: Int32Array | undefined;

function makeCrcTable(): Int32Array {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
}

/** CRC-32 of `data` (continuing from `value`): native `zlib.crc32` when Node has it, else {@link crc32Js}. */
export const crc32: (data: Uint8Array, value?: number) => number =
  typeof zlib.crc32 === 'function' ? zlib.crc32 : crc32Js;

/**
 * Splits text into chunks of at most `max` bytes, cutting only after `'\n'` when possible (a
 * single line longer than `max` is cut inside the line). Returns subarrays of `buf`, no copies;
 * empty input gives no chunks.
 */
export function splitForMembers(buf: Buffer, max: number = BGZF_MAX_INPUT): Buffer[] {
  if (!Number.isInteger(max) || max < 1) throw optionError('range', 'max', `must be a positive integer, got ${max}`);
  const chunks: Buffer[] = [];
  let start = 0;
  while (buf.length - start > max) {
    const nl = buf.lastIndexOf(10, start + max - 1);
    const end = nl >= start ? nl + 1 : start + max;
    chunks.push(buf.subarray(start, end));
    start = end;
  }
  if (start < buf.length) chunks.push(buf.subarray(start));
  return chunks;
}

/** Deflate options shared by both paths: `flush: Z_FINISH` makes the async output byte-identical (else level 0 adds an empty stored block). */
function deflateOptions(data: Buffer, level: number): zlib.ZlibOptions {
  if (data.length > BGZF_MAX_INPUT) {
    throw optionError('range', 'data', `a BGZF member holds at most ${BGZF_MAX_INPUT} bytes, got ${data.length}`);
  }
  return { level, flush: zlib.constants.Z_FINISH };
}

/** Frames raw deflate output as a BGZF member for `data`. */
function frame(data: Buffer, deflated: Buffer): Buffer {
  const size = HEADER + deflated.length + TRAILER;
  // cannot happen for ≤ BGZF_MAX_INPUT bytes at any level; checked so a zlib change cannot write a bad BSIZE
  if (size > BGZF_MAX_MEMBER) throw new RangeError(`BGZF member of ${size} bytes exceeds ${BGZF_MAX_MEMBER}`);
  const out = Buffer.allocUnsafe(size);
  BGZF_EOF.copy(out, 0, 0, 16); // the fixed header up to BSIZE
  out.writeUInt16LE(size - 1, 16);
  deflated.copy(out, HEADER);
  out.writeUInt32LE(crc32(data), size - TRAILER);
  out.writeUInt32LE(data.length, size - 4);
  return out;
}

const deflateRaw = promisify(zlib.deflateRaw) as (buf: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>;

/**
 * One complete gzip member for `data` (≤ {@link BGZF_MAX_INPUT} bytes, else a `RangeError`) with
 * the BGZF `BC` extra subfield, compressed on the libuv thread pool. Same bytes as
 * {@link bgzfMemberSync}.
 */
export async function bgzfMember(data: Buffer, level: number): Promise<Buffer> {
  return frame(data, await deflateRaw(data, deflateOptions(data, level)));
}

/** {@link bgzfMember}, synchronously (when memory is bounded or at process exit); byte-identical output. */
export function bgzfMemberSync(data: Buffer, level: number): Buffer {
  return frame(data, zlib.deflateRawSync(data, deflateOptions(data, level)));
}

/** BSIZE from a gzip extra field (`extra` = the XLEN bytes), or undefined when it has no `BC` subfield. */
export function bcField(extra: Buffer): number | undefined {
  for (let p = 0; p + 4 <= extra.length; ) {
    const slen = extra.readUInt16LE(p + 2);
    if (extra[p] === 66 && extra[p + 1] === 67 && slen === 2 && p + 6 <= extra.length) return extra.readUInt16LE(p + 4);
    p += 4 + slen;
  }
  return undefined;
}

/**
 * True when `bytes` could be the start of a gzip member: the magic `1f 8b` and CM = 8 (deflate),
 * as far as present, so a file torn after its first byte is gzip too. The one rule by which every
 * reader and writer tells gzip from plain text (issue 10 §3: by content, never by the `.gz` name).
 */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && (bytes.length < 2 || bytes[1] === 0x8b) && (bytes.length < 3 || bytes[2] === 8);
}

/** The fixed start of a rowlog/bgzip member header: magic, CM, FLG=FEXTRA, …, XLEN 6, `BC`, SLEN 2. */
export function isBgzfHeaderAt(buf: Buffer, p: number): boolean {
  return (
    buf[p] === 0x1f && buf[p + 1] === 0x8b && buf[p + 2] === 8 && buf[p + 3] === 4 &&
    buf[p + 10] === 6 && buf[p + 11] === 0 && buf[p + 12] === 66 && buf[p + 13] === 67 && buf[p + 14] === 2 && buf[p + 15] === 0
  );
}

/** The size of the BGZF member at `p` of `buf` (its header must be there), from BSIZE. */
export const memberSize = (buf: Buffer, p: number): number => buf.readUInt16LE(p + 16) + 1;

/**
 * Where the next valid BGZF member starts in `buf` after `from`: a header whose BSIZE fits and
 * whose member inflates with the right CRC (a header's 16 bytes can occur inside deflate data;
 * the CRC cannot be fooled). -1 when there is none in `buf`.
 */
export function nextMember(buf: Buffer, from: number): number {
  for (let p = buf.indexOf(0x1f, from); p !== -1 && p + HEADER <= buf.length; p = buf.indexOf(0x1f, p + 1)) {
    if (!isBgzfHeaderAt(buf, p)) continue;
    const size = memberSize(buf, p);
    if (p + size <= buf.length && inflateMember(buf.subarray(p, p + size)) !== undefined) return p;
  }
  return -1;
}

/** Where the deflate data of the gzip member at `pos` starts; 'short' if the header runs past the end, 'bad' if it is no gzip header. */
function bodyStart(buf: Buffer, pos: number): number | 'short' | 'bad' {
  if (!isGzip(buf.subarray(pos, pos + 3))) return 'bad';
  const flg = buf[pos + 3];
  let p = pos + 10;
  if (flg === undefined || p > buf.length) return 'short';
  if (flg & 4) {
    if (p + 2 > buf.length) return 'short';
    p += 2 + buf.readUInt16LE(p);
  }
  for (const bit of [8, 16]) {
    // FNAME, FCOMMENT: zero-terminated
    if (flg & bit) {
      const z = buf.indexOf(0, p);
      if (z < 0) return 'short';
      p = z + 1;
    }
  }
  if (flg & 2) p += 2; // FHCRC
  return p > buf.length ? 'short' : p;
}

/** What zlib's `*Sync(buf, {info: true})` returns: the output and the engine, whose `bytesWritten` is the input consumed. */
interface InflateInfo {
  buffer: Buffer;
  engine: { bytesWritten: number };
}

/** Result of {@link gunzipTolerant}. */
export interface GunzipResult {
  /** Everything that decodes, in order. */
  data: Buffer;
  /** The input did not end cleanly after a whole member: cut short, or followed by bytes that are not a member. */
  truncated: boolean;
  /** Why decoding stopped early, when it was corrupt data rather than the input simply ending. */
  error?: Error;
}

/**
 * Decodes any gzip content: one stream, many members (BGZF or not), empty members, or cut short
 * at the end, in which case it returns all whole members plus what decodes of the torn one,
 * with `truncated: true`. Never throws: corrupt data also stops decoding (`truncated: true`,
 * with `error`). Empty input decodes to nothing.
 */
export function gunzipTolerant(buf: Buffer): GunzipResult {
  if (buf.length === 0) return { data: Buffer.alloc(0), truncated: false };
  try {
    // zlib decodes every member natively, but silently ignores trailing bytes that start with 0
    const r = zlib.gunzipSync(buf, { info: true }) as unknown as InflateInfo;
    if (r.engine.bytesWritten === buf.length) return { data: r.buffer, truncated: false };
  } catch {
    // not clean: fall through
  }
  // walk the members one by one to keep what decodes and say where it stopped
  const parts: Buffer[] = [];
  const stop = (error?: Error): GunzipResult => ({ data: Buffer.concat(parts), truncated: true, ...(error && { error }) });
  let pos = 0;
  while (pos < buf.length) {
    const body = bodyStart(buf, pos);
    if (body === 'short') return stop();
    if (body === 'bad') return stop(new Error(`not a gzip member at offset ${pos}`));
    let out: Buffer;
    let used: number;
    try {
      // Z_SYNC_FLUSH: a stream cut short yields what it has instead of throwing; inflate stops at the stream end
      // with `info: true` Node returns {buffer, engine}; @types/node does not model that overload
      const r = zlib.inflateRawSync(buf.subarray(body), { finishFlush: zlib.constants.Z_SYNC_FLUSH, info: true }) as unknown as InflateInfo;
      out = r.buffer;
      used = r.engine.bytesWritten;
    } catch (err) {
      return stop(err as Error);
    }
    parts.push(out);
    const end = body + used + TRAILER;
    if (end > buf.length) return stop(); // stream or trailer cut short
    if (buf.readUInt32LE(end - 8) !== crc32(out) || buf.readUInt32LE(end - 4) !== out.length % 2 ** 32) {
      parts.pop();
      return stop(new Error(`CRC or length mismatch in the gzip member at offset ${pos}`));
    }
    pos = end;
  }
  return { data: Buffer.concat(parts), truncated: false }; // only reached if zlib refused something this walk accepts
}

/**
 * The most text one BGZF member can hold: BSIZE caps a member at 64 KiB and deflate's best
 * ratio is 1032:1, so ~67 MB. rowlog writes at most {@link BGZF_MAX_INPUT}; a member claiming
 * more (ISIZE) is damaged. Bounds what inflating one member may allocate (issue 11 §1).
 */
export const BGZF_MAX_MEMBER_TEXT = BGZF_MAX_MEMBER * 1032;

/**
 * The text of one BGZF member, its allocation bounded: zlib's `maxOutputLength` is the member's
 * own ISIZE (at most {@link BGZF_MAX_MEMBER_TEXT}), so a member cannot inflate to more than it
 * says. Undefined when its data, CRC-32 or ISIZE is wrong (damage).
 */
export function inflateMember(member: Buffer): Buffer | undefined {
  if (member.length < HEADER + TRAILER) return undefined;
  const isize = member.readUInt32LE(member.length - 4);
  if (isize > BGZF_MAX_MEMBER_TEXT) return undefined;
  if (isize === 0) return member.equals(BGZF_EOF) || emptyMemberOk(member) ? Buffer.alloc(0) : undefined;
  try {
    const xlen = member.readUInt16LE(10);
    const text = zlib.inflateRawSync(member.subarray(12 + xlen, member.length - TRAILER), { maxOutputLength: isize });
    return text.length === isize && member.readUInt32LE(member.length - 8) === crc32(text) ? text : undefined;
  } catch {
    return undefined; // bad data, or more text than ISIZE says (ERR_BUFFER_TOO_LARGE)
  }
}

/** An empty member other than the EOF member's exact bytes: its data must inflate to nothing, CRC 0. */
function emptyMemberOk(member: Buffer): boolean {
  try {
    const xlen = member.readUInt16LE(10);
    const text = zlib.inflateRawSync(member.subarray(12 + xlen, member.length - TRAILER), { maxOutputLength: 1 });
    return text.length === 0 && member.readUInt32LE(member.length - 8) === 0;
  } catch {
    return false;
  }
}

/**
 * {@link inflateMember} for a member too large to hold whole: its text in pieces of at most
 * `pieceBytes` as it inflates (never more than ISIZE in all); the generator's return value says
 * whether the CRC-32 and ISIZE matched at the end, so a caller that must not use a damaged
 * member's text keeps only what it needs until then (tail keeps its last bytes).
 */
export async function* memberPieces(member: Buffer, pieceBytes = 1 << 20): AsyncGenerator<Buffer, boolean> {
  if (member.length < HEADER + TRAILER) return false;
  const isize = member.readUInt32LE(member.length - 4);
  if (isize > BGZF_MAX_MEMBER_TEXT) return false;
  const inflate = zlib.createInflateRaw({ chunkSize: pieceBytes });
  let crc = 0;
  let length = 0;
  try {
    inflate.end(member.subarray(12 + member.readUInt16LE(10), member.length - TRAILER));
    for await (const piece of inflate as AsyncIterable<Buffer>) {
      length += piece.length;
      if (length > isize) return false;
      crc = crc32(piece, crc);
      yield piece;
    }
  } catch {
    return false;
  } finally {
    inflate.destroy();
  }
  return length === isize && crc === member.readUInt32LE(member.length - 8);
}

/** {@link memberPieces} with each piece handed to `onPiece`; resolves to whether the member was intact. */
export async function inflateMemberPieces(member: Buffer, onPiece: (piece: Buffer) => void, pieceBytes = 1 << 20): Promise<boolean> {
  const pieces = memberPieces(member, pieceBytes);
  for (;;) {
    const r = await pieces.next();
    if (r.done === true) return r.value;
    onPiece(r.value);
  }
}
