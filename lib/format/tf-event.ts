/**
 * TensorBoard `Event` messages, protobuf-encoded by hand and framed as TFRecords
 * (docs/DESIGN.md §4): the bytes of an events file, no I/O.
 *
 * Why by hand: rowlog writes three messages of TensorBoard's schema (package `tensorboard`,
 * tensorboard/compat/proto/event.proto and summary.proto), with field numbers that have not
 * changed since TensorFlow 1; a protobuf library would be a dependency and an allocation per
 * message for ~60 lines of encoding. What is written, in that schema:
 * ```
 * Event   { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; } }
 * Summary { repeated Value value = 1; }
 * Value   { string tag = 1; float simple_value = 2; }
 * ```
 * Wire bytes of one Event (proto3: a zero step is left out, as protobuf's own encoders do):
 * `09 <wall_time: 8 bytes LE>` `10 <step: varint, two's complement for negatives>`
 * `2a <varint length> { 0a <varint length> { 0a <varint tag length> <tag UTF-8> 15 <float32 LE> } }*`
 *
 * **Values are float32**: `simple_value` is a protobuf `float`, as TensorBoard, tensorboardX and
 * PyTorch's SummaryWriter write scalars, so each value is rounded to the nearest float32
 * (`Math.fround`); 0.1 reads back as 0.10000000149011612. NaN and ±Infinity are kept. The
 * JSONL and CSV files keep the full doubles.
 *
 * Speed: each (table, key)'s bytes up to the float (`0a len 0a len tag 15`) are made once and
 * copied per row, and a batch is encoded into one Buffer that doubles as needed, so a row costs
 * no allocation; every record's CRC32C is computed over that Buffer in place.
 */
import type { Entry, FlatRow } from '../core/entry.js';
import { frameRecord, TFRECORD_HEAD, TFRECORD_OVERHEAD, tfrecord } from './tfrecord.js';

/** The `file_version` of the first event of every events file ("All versions start with brain.Event:"). */
export const TF_FILE_VERSION = 'brain.Event:2';

/** Most bytes of an Event around its Summary: wall_time 9, step 11, the summary's key and length 6. */
const EVENT_HEAD_MAX = 26;
/** A batch's Buffer starts at least this big. */
const MIN_BUFFER = 4096;

/** Bytes of `n` (≥ 0, < 2^53) as a varint. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` (≥ 0, < 2^53) as a varint at `pos`; returns the end. */
function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Writes an int64 `step` as protobuf does (negatives as 10-byte two's complement); returns the end. */
function writeInt64(buf: Buffer, pos: number, step: number): number {
  if (step >= 0 && step <= Number.MAX_SAFE_INTEGER) return writeVarint(buf, pos, step);
  let v = BigInt.asUintN(64, BigInt(step));
  while (v >= 128n) {
    buf[pos++] = Number(v & 127n) | 128;
    v >>= 7n;
  }
  buf[pos++] = Number(v);
  return pos;
}

/** A step as an int64 value: whole (truncated), 0 when not a number, clamped to int64's range. */
function int64Step(step: number): number {
  if (Number.isNaN(step)) return 0;
  const s = Math.trunc(step);
  return Math.min(Math.max(s, -(2 ** 63)), 2 ** 63 - 1024); // 2^63 − 1024: the largest double below 2^63
}

/** The Value bytes up to the float for `<table>/<key>`. */
function valuePrefix(tag: string): Buffer {
  const tagBytes = Buffer.from(tag, 'utf8');
  const valueLen = 1 + varintSize(tagBytes.length) + tagBytes.length + 5;
  const p = Buffer.allocUnsafe(1 + varintSize(valueLen) + valueLen - 4);
  p[0] = 0x0a;
  let pos = writeVarint(p, 1, valueLen);
  p[pos++] = 0x0a;
  pos = writeVarint(p, pos, tagBytes.length);
  pos += tagBytes.copy(p, pos);
  p[pos] = 0x15;
  return p;
}

/** The framed first record of an events file: `Event {wall_time, file_version: "brain.Event:2"}`. */
export function fileVersionRecord(wallTime: number): Buffer {
  const version = Buffer.from(TF_FILE_VERSION, 'utf8');
  const data = Buffer.allocUnsafe(9 + 2 + version.length);
  data[0] = 0x09;
  data.writeDoubleLE(wallTime, 1);
  data[9] = 0x1a;
  data[10] = version.length;
  version.copy(data, 11);
  return tfrecord(data);
}

/** One encoded batch: its framed records, and how many rows became events. */
export interface EncodedEvents {
  readonly bytes: Buffer;
  readonly events: number;
}

/**
 * Encodes rows as TFRecord-framed Events, one per row with at least one numeric (or boolean)
 * column: `wall_time` = `$time`/1000, `step` = `$step`, one Value per such column tagged
 * `<table>/<key>` (booleans 1/0; strings and nulls left out). Keeps each tag's bytes.
 */
export class EventEncoder {
  /** table → key → the Value's bytes up to its float (`0a len 0a len tag 15`). */
  readonly #tags = new Map<string, Map<string, Buffer>>();
  /** Bytes per row of the last batch, to size the next batch's Buffer. */
  #perRow = 256;
  // Reused per row: the Values of the row being encoded (the prefixes are the cached ones).
  readonly #prefixes: Buffer[] = [];
  readonly #values: number[] = [];

  #tagsOf(table: string): Map<string, Buffer> {
    let m = this.#tags.get(table);
    if (m === undefined) this.#tags.set(table, (m = new Map()));
    return m;
  }

  /** The batch's records in one Buffer (empty when no row has a numeric column). */
  encode(batch: ReadonlyArray<Entry<FlatRow>>): EncodedEvents {
    let buf = Buffer.allocUnsafe(Math.max(MIN_BUFFER, Math.ceil(this.#perRow * batch.length * 1.125)));
    let pos = 0;
    let events = 0;
    const prefixes = this.#prefixes;
    const values = this.#values;
    let lastTable: string | undefined;
    let tags: Map<string, Buffer> = new Map();
    for (const entry of batch) {
      if (entry.table !== lastTable) {
        lastTable = entry.table;
        tags = this.#tagsOf(lastTable);
      }
      // Pass 1: the row's numeric Values and the Summary's length.
      const data = entry.data;
      let n = 0;
      let summaryLen = 0;
      for (const key in data) {
        const v = data[key];
        let x: number;
        if (typeof v === 'number') x = v;
        else if (typeof v === 'boolean') x = v ? 1 : 0;
        else continue;
        let p = tags.get(key);
        if (p === undefined) tags.set(key, (p = valuePrefix(`${lastTable}/${key}`)));
        prefixes[n] = p;
        values[n] = x;
        n++;
        summaryLen += p.length + 4;
      }
      if (n === 0) continue;
      // Pass 2: the framed Event.
      const need = pos + TFRECORD_OVERHEAD + EVENT_HEAD_MAX + summaryLen;
      if (need > buf.length) {
        let size = buf.length * 2;
        while (size < need) size *= 2;
        const next = Buffer.allocUnsafe(size);
        buf.copy(next, 0, 0, pos);
        buf = next;
      }
      const start = pos;
      let q = start + TFRECORD_HEAD;
      buf[q] = 0x09;
      buf.writeDoubleLE(entry.time / 1000, q + 1);
      q += 9;
      const step = int64Step(entry.step);
      if (step !== 0) {
        buf[q] = 0x10;
        q = writeInt64(buf, q + 1, step);
      }
      buf[q] = 0x2a;
      q = writeVarint(buf, q + 1, summaryLen);
      for (let i = 0; i < n; i++) {
        const p = prefixes[i] as Buffer;
        buf.set(p, q);
        q += p.length;
        buf.writeFloatLE(values[i] as number, q);
        q += 4;
      }
      pos = frameRecord(buf, start, q - start - TFRECORD_HEAD);
      events++;
    }
    if (batch.length > 0) this.#perRow = Math.max(16, pos / batch.length);
    // A Buffer mostly empty is copied to its size, so a queued batch holds about what it says.
    const bytes = pos * 2 < buf.length ? Buffer.from(buf.subarray(0, pos)) : buf.subarray(0, pos);
    return { bytes, events };
  }
}
