/**
 * A training loop that never yields to the event loop (issue 9, point 8): the flush interval of
 * the file sinks and the console's print interval must hold without their timers firing.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { gunzipTolerant } from '../lib/format/bgzf.js';
import { ROOT, run, tmpdir } from './helpers.js';

t.test('no await in the loop, kill -9: every epoch row logged a flush interval before is in .jsonl.gz and .csv; the console printed once a second', async (t) => {
  const dir = path.join(tmpdir(t), 'run');
  const child = spawn(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'sync-loop.mjs'), dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  let out = '';
  const started = Date.now();
  await new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (/^epoch 4$/m.test(out)) resolve(); // epoch 3 was logged about a second ago, epoch 0 four
    });
  });
  child.kill('SIGKILL');
  await exited;
  const seconds = (Date.now() - started) / 1000;

  const gz = gunzipTolerant(fs.readFileSync(path.join(dir, 'epoch.jsonl.gz'))).data.toString('utf8');
  const inGz = gz.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { e: number }).e);
  t.same(inGz.slice(0, 4), [0, 1, 2, 3], `epochs 0-3 are in epoch.jsonl.gz (${JSON.stringify(inGz)})`);
  const py = run('python3', ['-c', 'import csv,sys,json; print(json.dumps([r["e"] for r in csv.DictReader(open(sys.argv[1], newline=""))]))', path.join(dir, 'epoch.csv')]);
  t.equal(py.status, 0, py.stderr);
  t.same((JSON.parse(py.stdout) as string[]).slice(0, 4), ['0', '1', '2', '3'], 'and in epoch.csv (read by Python csv)');
  const trainGz = gunzipTolerant(fs.readFileSync(path.join(dir, 'train.jsonl.gz'))).data.toString('utf8');
  t.ok(trainGz.split('\n').length > 1000, 'train rows reached the disk too');

  const prints = (table: string) => out.split('\n').filter((l) => l.startsWith(`── ${table} `)).length;
  t.ok(prints('train') >= 3 && prints('train') <= seconds + 2, `the console printed train about once a second (${prints('train')} in ${seconds.toFixed(1)} s)`);
  t.ok(prints('epoch') >= 3, `and epoch (${prints('epoch')})`);
});
