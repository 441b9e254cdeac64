/**
 * Test-side readers of TensorBoard events files, written apart from lib/format (no import of it):
 * a TFRecord walker checking both masked CRC32Cs with a bit-by-bit CRC32C of its own, a tiny
 * protobuf field walker for Event/Summary/Value, and the Python reader
 * (test/fixtures/tensorboard/read_events.py) run on protoc-compiled classes of TensorBoard's schema.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lineToRow } from '../lib/format/parse-lines.js';
import { ROOT } from './helpers.js';

/** One event as a reader sees it. */
export interface TfEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values?: Record<string, number>;
}

/** What a walk of one file found: its events, and the bytes of a torn last record (0 if none). */
export interface TfFile {
  events: TfEvent[];
  torn: number;
}

/** CRC32C, bit by bit (Castagnoli, reflected 0x82F63B78): slow and obviously right. */
function crc32cBitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of data) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function masked(data: Uint8Array): number {
  const c = crc32cBitwise(data);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** A protobuf message's fields: [field number, wire type, value (varint as bigint, bytes, or a 32/64-bit slice)]. */
function* fields(buf: Buffer): Generator<[number, number, bigint | Buffer]> {
  let pos = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[pos++];
      if (b === undefined) throw new Error('varint runs past the message');
      v |= BigInt(b & 127) << shift;
      if (b < 128) return v;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) yield [field, wire, varint()];
    else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      yield [field, wire, buf.subarray(pos, (pos += n))];
    } else if (wire === 2) {
      const n = Number(varint());
      yield [field, wire, buf.subarray(pos, (pos += n))];
    } else throw new Error(`wire type ${wire}`);
  }
}

/** An Event message (TensorBoard's field numbers). */
export function decodeEvent(buf: Buffer): TfEvent {
  const ev: TfEvent = { wallTime: 0, step: 0 };
  for (const [f, , v] of fields(buf)) {
    if (f === 1) ev.wallTime = (v as Buffer).readDoubleLE(0);
    else if (f === 2) ev.step = Number(BigInt.asIntN(64, v as bigint));
    else if (f === 3) ev.fileVersion = (v as Buffer).toString('utf8');
    else if (f === 5) {
      ev.values ??= {};
      for (const [sf, , value] of fields(v as Buffer)) {
        if (sf !== 1) continue;
        let tag = '';
        let x = NaN;
        for (const [vf, , vv] of fields(value as Buffer)) {
          if (vf === 1) tag = (vv as Buffer).toString('utf8');
          else if (vf === 2) x = (vv as Buffer).readFloatLE(0);
        }
        ev.values[tag] = x;
      }
    }
  }
  return ev;
}

/** Walks the TFRecords of `file`, checking both CRCs of each (throws on a bad one); a cut last record is `torn`. */
export function readTfFile(file: string): TfFile {
  const data = fs.readFileSync(file);
  const events: TfEvent[] = [];
  let pos = 0;
  while (pos < data.length) {
    if (data.length - pos < 12) return { events, torn: data.length - pos };
    const head = data.subarray(pos, pos + 8);
    if (masked(head) !== data.readUInt32LE(pos + 8)) throw new Error(`${file}: bad length CRC at ${pos}`);
    const len = Number(data.readBigUInt64LE(pos));
    const end = pos + 12 + len + 4;
    if (end > data.length) return { events, torn: data.length - pos };
    const body = data.subarray(pos + 12, pos + 12 + len);
    if (masked(body) !== data.readUInt32LE(end - 4)) throw new Error(`${file}: bad data CRC at ${pos}`);
    events.push(decodeEvent(body));
    pos = end;
  }
  return { events, torn: 0 };
}

/** The events files of `dir`, in name order (as TensorBoard reads them). */
export function eventsFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('events.out.tfevents.') && !f.endsWith('.tmp'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** protoc's Python classes of test/fixtures/tensorboard/*.proto, compiled once per process into a temp folder. */
let compiled: string | undefined;
function protoOut(protoc: string): string {
  if (compiled !== undefined) return compiled;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-tbproto-'));
  process.on('exit', () => fs.rmSync(out, { recursive: true, force: true }));
  const src = path.join(ROOT, 'test', 'fixtures', 'tensorboard');
  execFileSync(protoc, [`--python_out=${out}`, `-I${src}`, path.join(src, 'event.proto'), path.join(src, 'summary.proto')]);
  return (compiled = out);
}

/** Reads `file` with the Python reader (protobuf + crc32c); throws with its stderr on a bad CRC. */
export function readTfFilePython(python: string, protoc: string, file: string): TfFile {
  const script = path.join(ROOT, 'test', 'fixtures', 'tensorboard', 'read_events.py');
  const out = execFileSync(python, [script, protoOut(protoc), file], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: TfEvent[] = [];
  let torn = 0;
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const o = JSON.parse(line) as { torn?: number; wall_time: number | string; step: number; file_version?: string; values?: Record<string, number | string> };
    if (o.torn !== undefined) {
      torn = o.torn;
      continue;
    }
    const ev: TfEvent = { wallTime: Number(o.wall_time), step: o.step };
    if (o.file_version !== undefined) ev.fileVersion = o.file_version;
    if (o.values !== undefined) ev.values = Object.fromEntries(Object.entries(o.values).map(([k, v]) => [k, typeof v === 'string' ? Number(v) : v]));
    events.push(ev);
  }
  return { events, torn };
}

/** The rows of a JSONL file (NaN and ±Infinity restored by rowlog's line rule). */
export function jsonlRows(file: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => lineToRow(l))
    .filter((r) => r !== undefined);
}

/**
 * The events a JSONL table's rows must have become: one per row with a numeric or boolean
 * column, wall_time $time/1000, step $step, values as float32, tags `<table>/<key>`.
 */
export function expectedEvents(table: string, rows: Array<Record<string, unknown>>): TfEvent[] {
  const out: TfEvent[] = [];
  for (const r of rows) {
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(r)) {
      if (k.startsWith('$')) continue;
      if (typeof v === 'number') values[`${table}/${k}`] = Math.fround(v);
      else if (typeof v === 'boolean') values[`${table}/${k}`] = v ? 1 : 0;
    }
    if (Object.keys(values).length > 0) out.push({ wallTime: (r.$time as number) / 1000, step: r.$step as number, values });
  }
  return out;
}
