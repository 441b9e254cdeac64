/** Bounded positional reads, shared by the readers that look at a file's end (tail, last steps). */
import fs from 'node:fs';

/** The bytes of `[start, end)` of the open file `fd` (fewer when the file ends first). */
export function readAt(fd: number, start: number, end: number): Buffer {
  const buf = Buffer.allocUnsafe(end - start);
  let off = 0;
  while (off < buf.length) {
    const n = fs.readSync(fd, buf, off, buf.length - off, start + off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}
