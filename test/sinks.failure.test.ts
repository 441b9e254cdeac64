/**
 * A sink that cannot write (ENOSPC on a full disk, EACCES on a read-only folder) emits 'error'
 * with the code; the logger warns once; the other sinks keep every row; log.row() never throws.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ROOT, run, tmpdir } from './helpers.js';

const fixture = path.join(ROOT, 'test', 'fixtures', 'sink-failure.mjs');

interface Outcome {
  thrown: number;
  sinkErrors: string[];
  warnings: Array<{ code: string; message: string }>;
  kept: number;
}

function child(args: string[], opts: { uid?: number } = {}): Outcome {
  const r = run(process.execPath, [fixture, ...args], opts);
  if (r.status !== 0) throw new Error(`child failed (${String(r.status)}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Outcome;
}

for (const [kind, file] of [['jsonl', 'full.jsonl.gz'], ['csv', 'full.csv']] as const) {
  t.test(`${file} on a full disk (/dev/full): ENOSPC, one warning, every row kept elsewhere`, async (t) => {
    const link = path.join(tmpdir(t), file);
    fs.symlinkSync('/dev/full', link);
    const out = child([link, kind]);
    t.equal(out.thrown, 0, 'log.row() never threw');
    t.same(out.sinkErrors, ['ENOSPC'], 'the sink emitted one error with the code');
    t.same(out.warnings.map((w) => w.code), ['W_FILE_ERROR', 'W_ROWS_DROPPED', 'W_SINK_ERROR'], 'the file failed, its rows were counted at close, then the sink failed');
    t.match(out.warnings[0], { message: new RegExp(`${file} cannot be written \\(ENOSPC\\)`) });
    t.match(out.warnings[1], { message: /5000 rows in all could not be written/ });
    t.match(out.warnings[2], { message: new RegExp(`${file} failed \\(ENOSPC\\).*other sinks keep writing`) });
    t.equal(out.kept, 5000, 'the memory sink kept every row');
  });
}

t.test('a read-only folder: EACCES, one warning, every row kept elsewhere', async (t) => {
  // As root, permissions do not stop writes: the child runs as nobody.
  const base = tmpdir(t);
  fs.chmodSync(base, 0o755);
  const ro = path.join(base, 'ro');
  fs.mkdirSync(ro, { mode: 0o555 });
  fs.chmodSync(ro, 0o555);
  const out = child([ro, 'dir'], { uid: 65534 });
  t.equal(out.thrown, 0, 'log.row() never threw');
  t.same(out.sinkErrors, ['EACCES']);
  t.same(out.warnings.map((w) => w.code), ['W_FILE_ERROR', 'W_ROWS_DROPPED', 'W_SINK_ERROR']);
  t.match(out.warnings[0], { message: /cannot be written \(EACCES\)/ });
  t.match(out.warnings[2], { message: /failed \(EACCES\)/ });
  t.equal(out.kept, 5000);
  t.same(fs.readdirSync(ro), [], 'nothing was written into the folder');
});
