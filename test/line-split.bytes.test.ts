/** LineSplitter: keepCr and onLongPart give a pipe the input's exact bytes; tiny chunks cost their bytes, not an object each. */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { LineSplitter } from '../lib/format/line-split.js';

/** Splits `input` cut into `cut`-byte chunks, giving back every byte: line + `\n`, long lines streamed. */
function roundTrip(input: Buffer, cut: number, maxLineBytes: number) {
  const out: Buffer[] = [];
  const longs: Array<[number, number]> = [];
  let ending = false;
  let peak = 0;
  const s = new LineSplitter(
    {
      onLine: (line) => out.push(Buffer.from(line), ...(ending ? [] : [Buffer.from('\n')])),
      onLongPart: (part) => out.push(Buffer.from(part)),
      onLongLine: (n, bytes) => {
        longs.push([n, bytes]);
        if (!ending) out.push(Buffer.from('\n'));
      },
    },
    { maxLineBytes, keepCr: true },
  );
  for (let i = 0; i < input.length; i += cut) {
    s.write(input.subarray(i, i + cut));
    peak = Math.max(peak, s.pendingBytes);
  }
  ending = true;
  s.end();
  return { out: Buffer.concat(out), longs, peak, lines: s.lineNumber };
}

t.test('keepCr + onLongPart: every byte comes back, in order, whatever the chunks', async (t) => {
  const input = Buffer.concat([
    Buffer.from('a\r\nb\n\n\r\n'),
    Buffer.from([0, 0xff, 0xfe, 0xc3, 10, 0xe2, 0x82]),
    Buffer.alloc(10_000, 'x'),
    Buffer.from('\r\n'),
    randomBytes(50_000),
    Buffer.from('end without newline\r'),
  ]);
  for (const cut of [1, 7, 4096, 65536, input.length]) {
    const r = roundTrip(input, cut, 1000);
    t.ok(r.out.equals(input), `chunks of ${cut}: identical bytes`);
    t.ok(r.longs.some(([, b]) => b === 10_003), `chunks of ${cut}: the long line counted with its bytes (2 before the x run, the \\r included)`);
    t.ok(r.peak <= 1000, `chunks of ${cut}: at most the bound held (${r.peak})`);
  }
});

t.test('without keepCr a \\r before the \\n is dropped (as before), in text mode too', async (t) => {
  for (const text of [false, true] as const) {
    const got: string[] = [];
    const s = new LineSplitter<Buffer | string>({ onLine: (l) => got.push(l.toString()), onLongLine: () => undefined }, { text } as never);
    s.write(Buffer.from('a\r\nb\r\nc\r'));
    s.write(Buffer.from('\nd'));
    s.end();
    t.same(got, ['a', 'b', 'c', 'd'], `text: ${text}`);
  }
});

t.test('a partial line fed one byte at a time holds blocks, not one buffer per byte', async (t) => {
  const s = new LineSplitter({ onLine: () => undefined, onLongLine: () => undefined });
  const one = Buffer.from('y');
  for (let i = 0; i < 100_000; i++) s.write(one);
  t.ok(s.pendingBytes >= 100_000 && s.pendingBytes <= 200_000 + 4096, `pendingBytes ${s.pendingBytes} for 100,000 bytes`);
  let line: Buffer | undefined;
  const s2 = new LineSplitter({ onLine: (l) => (line = Buffer.from(l)), onLongLine: () => undefined });
  for (let i = 0; i < 100_000; i++) s2.write(one);
  s2.write(Buffer.from('\n'));
  t.equal(line?.length, 100_000);
  t.ok(line?.every((b) => b === 0x79));
  t.equal(s2.pendingBytes, 0, 'nothing held once the line ended');
});
