/**
 * The pieces of parquetSink on the main thread of a test (the sink runs them on its worker, where
 * coverage is not collected): a part's columns growing past their first allocation, every kind
 * of column encoded and read back by hyparquet and DuckDB, and the dataset folder's numbering.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetReadObjects } from 'hyparquet';
import t from 'tap';
import { encodePart } from '../lib/format/parquet-encode.js';
import { PartBuilder } from '../lib/format/parquet-part.js';
import { datasetPath, openDataset, partName, writePart } from '../lib/io/parquet-dataset.js';
import { tmpdir } from './helpers.js';

const ROWS = 100;

/** Row i: a number with nulls, a number without, a string with holes, a boolean with nulls, an all-null key. */
function data(i: number): Record<string, number | string | boolean | null> {
  return {
    full: i * 0.5,
    ...(i % 3 === 1 ? {} : { gappy: i }),
    ...(i % 4 === 1 ? {} : { text: `t${i}` }),
    flag: i % 5 === 0 ? null : i % 2 === 0,
    none: null,
  };
}

t.test('a part grows from 16 rows to 100 and encodes every kind of column', async (t) => {
  const part = new PartBuilder('x', 16, 1000);
  const fits = Array.from({ length: ROWS }, (_, i) => part.add({ table: 'x', level: i === 7 ? 7.5 : 20, step: i, time: 1e12 + i, data: data(i) }));
  t.ok(fits.every(Boolean), 'every row fits the part (keys missing from a row are nulls)');
  t.equal(part.full, false);
  const { job, transfer } = part.close();
  t.ok(transfer.length >= 3 + 5, 'the typed arrays are listed for transfer');
  for (const codec of ['SNAPPY', 'UNCOMPRESSED'] as const) {
    const bytes = encodePart(job, { codec, rowGroupRows: 30 });
    const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
    t.equal(rows.length, ROWS, `${codec}: every row`);
    const want = Array.from({ length: ROWS }, (_, i) => {
      const d = data(i);
      return { $step: BigInt(i), $time: BigInt(1e12 + i), $level: i === 7 ? 7.5 : 20, flag: d.flag, full: d.full, gappy: d.gappy ?? null, none: null, text: d.text ?? null };
    });
    t.same(rows, want, `${codec}: hyparquet reads every value, null where a row had none`);
  }
});

t.test('a part at its row limit is full; a fresh part takes any row', async (t) => {
  const part = new PartBuilder('x', 1, 3);
  for (let i = 0; i < 3; i++) part.add({ table: 'x', level: 20, step: i, time: 0, data: { v: i } });
  t.equal(part.full, true);
  const next = part.next();
  t.equal(next.add({ table: 'x', level: 20, step: 3, time: 0, data: { v: 'now a string', w: true } }), true, 'a fresh part: a new type and a new key fit');
  t.equal(next.add({ table: 'x', level: 20, step: 4, time: 0, data: { v: 1 } }), false, 'then the string column refuses a number');
  t.equal(next.add({ table: 'x', level: 20, step: 4, time: 0, data: { z: 1 } }), false, 'and the schema a new key');
  t.equal(next.rows, 1);
});

t.test('the dataset folder: created with parents, numbered after the highest part, temp files removed', async (t) => {
  const dir = tmpdir(t);
  const folder = datasetPath(dir, 'a/b');
  t.equal(folder, path.join(dir, 'a', 'b.parquet'));
  t.equal(openDataset(folder), 0, 'a new folder starts at part 0');
  const part = new PartBuilder('a/b', 4, 4);
  part.add({ table: 'a/b', level: 20, step: 0, time: 0, data: { v: 1 } });
  writePart(folder, 7, encodePart(part.close().job, { codec: 'SNAPPY', rowGroupRows: 10 }), true);
  fs.writeFileSync(path.join(folder, `${partName(8)}.123.tmp`), 'cut');
  fs.writeFileSync(path.join(folder, 'part-3.parquet'), 'not a part name of ours');
  t.equal(openDataset(folder), 8, 'after part 7 comes part 8');
  t.same(fs.readdirSync(folder).sort(), ['part-00007.parquet', 'part-3.parquet'], 'the temp file is removed, other files stay');
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  const rows = (await c.runAndReadAll(`SELECT v FROM read_parquet('${path.join(folder, partName(7))}')`)).getRowObjects();
  c.closeSync();
  t.same(rows, [{ v: 1 }], 'DuckDB reads the part written with fsync');
});
