/**
 * CRC32C (Castagnoli) and TFRecord's masked CRC, for TensorBoard event files (docs/DESIGN.md §4).
 *
 * What: the CRC-32 of iSCSI, ext4 and TFRecord, polynomial 0x1EDC6F41 (0x82F63B78 reflected),
 * initial value and final xor 0xFFFFFFFF. Not the CRC-32 of gzip (`zlib.crc32`, lib/format/bgzf.ts):
 * same shape, another polynomial, so Node has no native one.
 *
 * Why slicing-by-8: every byte of an events file is checksummed once (each record's data, ~0.5 KB
 * per row of 30 scalars), on the sink's timer; eight table lookups per 8 bytes instead of one per
 * byte make that a small part of encoding a batch.
 *
 * {@link maskCrc32c} is TFRecord's mask (`tensorflow/core/lib/hash/crc32c.h`): a CRC of data that
 * holds CRCs is weak, so each stored CRC is rotated right by 15 bits and offset by 0xa282ead8.
 */

/** Eight tables of 256: T[k][b] is the CRC of byte b followed by k zero bytes. */
let tables: Uint32Array | undefined;

function makeTables(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
}

/**
 * CRC32C of `data[start, end)`, continuing from `value` (the CRC of what came before; 0 to start).
 * Returns an unsigned 32-bit integer.
 */
export function crc32c(data: Uint8Array, value = 0, start = 0, end = data.length): number {
  const t = (tables ??= makeTables());
  let crc = ~value;
  let i = start;
  // Slicing-by-8: two 32-bit words at a time.
  for (const stop = end - 7; i < stop; i += 8) {
    const a = (crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    crc =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + data[i + 4]!]! ^
      t[512 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
  }
  for (; i < end; i++) crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** TFRecord's masked CRC: `((crc >>> 15) | (crc << 17)) + 0xa282ead8`, as uint32. */
export function maskCrc32c(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}
