/** What decoding a reader's input reports and takes (lib/read/decode.ts, docs/DESIGN.md §6). */

/** A stretch of gzip input that could not be decoded, skipped by the reader. */
export interface Damage {
  /**
   * Byte offset in the compressed input where the damage starts (for a plain gzip: where the
   * last piece zlib was given starts, at most 64 KiB before the bad byte).
   */
  offset: number;
  /** Compressed bytes skipped (for a plain gzip: every byte after `offset`). */
  length: number;
  /** Lines the damaged bytes held, when what is left of them still inflates far enough to count; else undefined. */
  rowsLost?: number;
}

/** Options of {@link decoded}. */
export interface DecodeOptions {
  /** Gzip input ended inside a member: the bytes after its last line end were dropped. */
  onTruncated?: () => void;
  /** A stretch of gzip input was damaged and skipped (blocked gzip) or ended the decoding (other gzip). */
  onDamaged?: (damage: Damage) => void;
  /** Bytes per inflated chunk of a plain gzip stream. @default 65536 */
  chunkSize?: number;
  /** The bytes after the last `\n` are held at most this long to drop them if the input is torn. @default 256 MiB */
  maxLineBytes?: number;
  /**
   * For a caller that splits lines itself (and so need not hold them twice): nothing is held
   * back, and when the text ends early (torn, or at damage that stops the decoding) `onCut` is
   * called before it ends, so the caller drops its last line if that has no `\n`. @default false
   */
  keepTornLine?: boolean;
  /** With `keepTornLine`: the text ends early; its last line, if it has no `\n`, is not whole. */
  onCut?: () => void;
}
