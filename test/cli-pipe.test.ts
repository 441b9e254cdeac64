/** `rowlog pipe`: a Python trainer's stdout piped in; rows land in the run folder, text passes through. */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CLI as cli, runCli } from './cli.js';
import { readJsonl, run, tmpdir } from './helpers.js';
import { needs } from './peers.js';

const trainer = `
import json, math, sys
print("starting training")
for step in range(200):
    print(json.dumps({"loss": 1 / (step + 1), "lr": 0.1, "w": [step, step + 1], "$step": step * 10}))
    if step % 50 == 0:
        print(f"epoch {step // 50} done")
print(json.dumps({"$table": "eval", "$level": "RESULTS", "acc": 0.9, "nan": math.nan}))
print("[1, 2, 3]")
print('{"half": ')
sys.stdout.flush()
`;

t.test('a Python script printing JSON rows and text, piped into rowlog pipe', async (t) => {
  if (!needs(t, 'python3')) return;
  const tmp = tmpdir(t);
  const dir = path.join(tmp, 'run');
  const script = path.join(tmp, 'train.py');
  fs.writeFileSync(script, trainer);
  const r = run('sh', ['-c', `python3 '${script}' | '${process.execPath}' '${cli}' pipe --dir '${dir}' --table train --no-console`]);
  t.equal(r.status, 0, r.stderr);
  t.equal(
    r.stdout,
    'starting training\nepoch 0 done\nepoch 1 done\nepoch 2 done\nepoch 3 done\n[1, 2, 3]\n{"half": \n',
    "the trainer's own text, unchanged and in order",
  );
  const rows = readJsonl(path.join(dir, 'train.jsonl.gz'));
  t.equal(rows.length, 200);
  t.same(rows[3], { $step: 30, $time: rows[3]?.$time, $level: 20, loss: 0.25, lr: 0.1, 'w.max': 4, 'w.mean': 3.5, 'w.min': 3, 'w.std': 0.5 });
  const evalText = fs.readFileSync(path.join(dir, 'eval.csv'), 'utf8');
  t.match(evalText, /^\$step,\$time,\$level,acc,nan\n0,\d+,35,0.9,NaN\n$/, 'the $table/$level row went to eval, NaN kept');
  t.ok(fs.existsSync(path.join(dir, 'run.json')));
});

t.test('rows show on stderr by default, never on stdout', async (t) => {
  const dir = path.join(tmpdir(t), 'run');
  const r = runCli(['pipe', '--dir', dir], { input: '{"acc": 1, "$level": "RESULTS"}\nhello\n' });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'hello\n');
  t.match(r.stderr, /── main {2}step 0 {2}RESULTS ─+\nacc +1\n/);
});

t.test('pipe without --dir is a usage error', async (t) => {
  const r = runCli(['pipe'], { input: '' });
  t.equal(r.status, 2);
  t.match(r.stderr, /required option '--dir <dir>'/);
});

t.test('rows shaped like Entries are plain rows: no crash, nothing misread, nothing outside the run folder', async (t) => {
  const tmp = tmpdir(t);
  const dir = path.join(tmp, 'run');
  const input = ['{"table":"../x","level":1,"data":{}}', '{"table":"t","level":1,"data":{"q":1},"a":1}', '{"$table":"../y","b":2}', '{"c":3}'].join('\n');
  const r = runCli(['pipe', '--dir', dir, '--table', 'main', '--no-console'], { input: `${input}\n` });
  t.equal(r.status, 0, r.stderr);
  const rows = readJsonl(path.join(dir, 'main.jsonl.gz')).map(({ $time: _, ...rest }) => rest);
  t.same(rows, [
    { $step: 0, $level: 20, level: 1, table: '../x' },
    { $step: 1, $level: 20, a: 1, 'data/q': 1, level: 1, table: 't' },
    { $step: 2, $level: 20, b: 2 },
    { $step: 3, $level: 20, c: 3 },
  ]);
  t.match(r.stderr, /W_BAD_META: \$table: invalid table name "\.\.\/y"/);
  t.same(fs.readdirSync(tmp), ['run']);
});
