/**
 * TFRecord framing, the container of TensorBoard event files (docs/DESIGN.md §4). Pure: records
 * are framed in a caller's buffer, no I/O.
 *
 * Layout of one record (integers little-endian; CRCs masked, lib/format/crc32c.ts):
 * ```
 * length: uint64 | masked CRC32C of those 8 bytes: uint32 | data: length bytes | masked CRC32C of data: uint32
 * ```
 * Why it suits a crash-tolerant log: a reader (TensorBoard's, tensorboardX's, TensorFlow's
 * `tf.data.TFRecordDataset`) walks records by their lengths and checks both CRCs, so a file cut
 * anywhere holds every record before the cut whole and at most one torn last record, which it
 * stops at.
 */
import { crc32c, maskCrc32c } from './crc32c.js';

/** Bytes before a record's data: the length and its CRC. */
export const TFRECORD_HEAD = 12;
/** Bytes a record adds to its data: {@link TFRECORD_HEAD} before, the data's CRC (4) after. */
export const TFRECORD_OVERHEAD = 16;

/**
 * Frames the record whose `length` data bytes the caller has already put at
 * `buf[start + TFRECORD_HEAD, …)`: writes the length and its CRC before them and the data's CRC
 * after. `buf` must hold `start + length + TFRECORD_OVERHEAD` bytes. Returns the record's end.
 */
export function frameRecord(buf: Buffer, start: number, length: number): number {
  // uint64 length: data never reaches 4 GiB here (a record is one event), so the high word is 0.
  buf.writeUInt32LE(length, start);
  buf.writeUInt32LE(0, start + 4);
  buf.writeUInt32LE(maskCrc32c(crc32c(buf, 0, start, start + 8)), start + 8);
  const data = start + TFRECORD_HEAD;
  buf.writeUInt32LE(maskCrc32c(crc32c(buf, 0, data, data + length)), data + length);
  return data + length + 4;
}

/** One record holding `data`, as a new Buffer. */
export function tfrecord(data: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(data.length + TFRECORD_OVERHEAD);
  buf.set(data, TFRECORD_HEAD);
  frameRecord(buf, 0, data.length);
  return buf;
}
