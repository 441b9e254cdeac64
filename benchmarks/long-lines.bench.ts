/**
 * Long lines (run by `npm run bench`, issue 11 §1): readLog on one row of 10, 20 and 40 MB, plain
 * and gzipped, against JSON.parse of the same line (the baseline a reader cannot beat). Linear
 * reading keeps the time per MB flat as the line grows; the quadratic split2-based
 * reader took 6 s, 35 s and 95 s here. Medians of 3 runs.
 */
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { readLog } from '../lib/read/read-log.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function readMs(chunks: Buffer[]): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  for await (const _ of readLog(Readable.from(chunks))) n++;
  if (n !== 2) throw new Error(`expected 2 rows, read ${n}`);
  return performance.now() - t0;
}

const pieces = (buf: Buffer, size = 65536): Buffer[] => {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
};

console.log('long lines: readLog on one row of N MB (+ one small row), median of 3');
// Warm up (the first JSON.parse and stream setup of a run are slower).
await readMs(pieces(Buffer.from(`${JSON.stringify({ blob: 'x'.repeat(1 << 20) })}\n{}\n`)));
const perMb: number[] = [];
for (const mb of [10, 20, 40]) {
  const line = JSON.stringify({ $step: 0, blob: 'x'.repeat(mb << 20) });
  const text = Buffer.from(`${line}\n{"$step":1}\n`);
  const gz = zlib.gzipSync(text, { level: 1 });
  const parse: number[] = [];
  const plain: number[] = [];
  const gzip: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    JSON.parse(line);
    parse.push(performance.now() - t0);
    plain.push(await readMs(pieces(text)));
    gzip.push(await readMs(pieces(gz)));
  }
  const ratio = median(plain) / median(parse);
  perMb.push(median(plain) / mb);
  console.log(
    `  ${String(mb).padStart(2)} MB: plain ${median(plain).toFixed(0)} ms, gzip ${median(gzip).toFixed(0)} ms, ` +
      `JSON.parse alone ${median(parse).toFixed(0)} ms (plain ${ratio.toFixed(1)}× JSON.parse)`,
  );
}
const growth = (perMb[2] as number) / (perMb[0] as number);
console.log(`  linear: a MB of the 40 MB line costs ${growth.toFixed(2)}× a MB of the 10 MB one (target ≤ 2; quadratic reading gives ~4)`);
