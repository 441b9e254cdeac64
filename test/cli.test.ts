/** The `rowlog` command: the demo a newcomer runs first, version and usage errors. */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { connect } from '../lib/index.js';
import { runCli, spawnCli } from './cli.js';
import { readJsonl, ROOT, run, tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { freePort } from './ports.js';
import { patient } from './wait.js';

const rowlog = (args: string[], cwd = ROOT) => runCli(args, { cwd });

t.test('rowlog demo trains, logs every step, and prints the tables and a query that works', async (t) => {
  const cwd = tmpdir(t);
  const r = rowlog(['demo', '--dir', 'runs/demo'], cwd);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr, '');
  const dir = path.join(cwd, 'runs', 'demo');
  t.match(r.stdout, /4800 steps in [\d.]+ s; test accuracy (9\d|100)\.\d %/);
  t.match(r.stdout, /run folder: runs\/demo\//);
  t.match(r.stdout, /epoch\s+300 rows\s+6 columns\s+epoch\.jsonl\.gz \(\d+ KiB\), epoch\.csv/);
  t.match(r.stdout, /eval\s+1 row\s+7 columns/);
  t.match(r.stdout, /grad_step\s+4800 rows\s+40 columns/);
  t.match(r.stdout, /── epoch  step 0  INFO ─+\ntrain_acc +0\.\d+\ntrain_loss/, 'the console sink shows INFO rows');
  t.ok(r.stdout.indexOf('── epoch  step 299  INFO') < r.stdout.indexOf('── eval  step 0  RESULTS'), 'the last epoch, then the result');
  t.notMatch(r.stdout, /grad_step  step/, 'TRACE rows stay off the console');

  const steps = readJsonl(path.join(dir, 'grad_step.jsonl.gz'));
  t.equal(steps.length, 4800);
  t.same(steps.map((s) => s.$step).slice(0, 3), [0, 1, 2]);
  t.ok(steps.every((s) => s.$level === 5), 'every step at TRACE');
  for (const key of ['loss', 'lr', 'grad_norm', 'weights/W1.mean', 'weights/W1.std', 'grads/W2.max', 'weights/b2.min']) {
    t.type(steps[100]?.[key], 'number', key);
  }
  const epochs = readJsonl(path.join(dir, 'epoch.jsonl.gz'));
  t.same(epochs.map((e) => e.$level), Array(300).fill(20));
  t.ok((epochs.at(-1)?.train_loss as number) < (epochs[0]?.train_loss as number) / 5, 'the network learned');
  t.match(readJsonl(path.join(dir, 'eval.jsonl.gz')), [{ $level: 35, test_acc: Number, epochs: 300, iterations: 4800 }]);
  t.match(JSON.parse(fs.readFileSync(path.join(dir, 'params.json'), 'utf8')), { batch: 32, epochs: 300 });
  t.match(JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')), { epochs_done: 300, iterations_done: 4800, $state: 'closed' });
  t.ok(fs.existsSync(path.join(dir, 'artifacts', 'model.json')));
  const csv = fs.readFileSync(path.join(dir, 'grad_step.csv'), 'utf8').split('\n');
  t.equal(csv.length - 2, 4800, 'grad_step.csv has a header and every step');
  t.match(csv[0], /^\$step,\$time,\$level,acc,epoch,grad_norm,grads\/W1\.max,/);

  const quiet = rowlog(['demo', '--dir', 'runs/quiet', '--quiet', '--epochs', '2'], cwd);
  t.equal(quiet.status, 0, quiet.stderr);
  t.notMatch(quiet.stdout, /──/, '--quiet: no console rows');
  t.match(quiet.stdout, /32 steps in/);
  for (const bad of ['-5', '0', '1.5', 'x']) {
    const r = rowlog(['demo', '--dir', `runs/bad${bad}`, '--epochs', bad], cwd);
    t.equal(r.status, 2, `--epochs ${bad} is a usage error`);
    t.match(r.stderr, /^rowlog: demo: option '--epochs <n>' argument '.*' is invalid\. must be a whole number ≥ 1\.\n$/, `--epochs ${bad}: the message says what is allowed`);
    t.notOk(fs.existsSync(path.join(cwd, `runs/bad${bad}`)), `--epochs ${bad}: no run folder is made`);
  }

  // The printed example is a real command: run it with the real jq.
  const example = /^ {2}(zcat .*)$/m.exec(r.stdout)?.[1];
  t.ok(example, 'prints a jq example');
  if (needs(t, 'jq', 'running the printed example with the real jq') && example) {
    const q = run('sh', ['-c', example], { cwd });
    t.equal(q.status, 0, q.stderr);
    const lines = q.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    t.same(lines.map((l) => l.step), [0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500]);
    t.type(lines[0]?.['W1.std'], 'number');
  }
});

t.test('rowlog --version prints the package version; usage errors exit 2 with one line', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const v = rowlog(['--version']);
  t.equal(v.status, 0);
  t.equal(v.stdout.trim(), pkg.version);
  const bad = rowlog(['frobnicate']);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /unknown command 'frobnicate'/);
  const badFlag = rowlog(['demo', '--bogus']);
  t.equal(badFlag.status, 2);
  t.match(badFlag.stderr, /unknown option '--bogus'/);
  t.equal(bad.stderr, "rowlog: unknown command 'frobnicate'\n", 'one line, starting rowlog: ');
  // Every command's usage errors are one line starting `rowlog: <command>: ` (docs/DESIGN.md §7).
  for (const args of [['demo', '--bogus'], ['ls', '--bogus'], ['query', '--bogus', '.', 'x'], ['query'], ['tail', '-n', 'x', 'f'], ['pipe', '--bogus'], ['serve', '--port', 'x'], ['collect', '--bogus']]) {
    const r = rowlog(args);
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, new RegExp(`^rowlog: ${args[0]}: [^\\n]+\\n$`), `${args.join(' ')}: one line starting rowlog: ${args[0]}: (${r.stderr.trim()})`);
  }
});

t.test('rowlog demo --socket P --pace MS serves every row live to a subscriber', async (t) => {
  const port = await freePort();
  const cwd = tmpdir(t);
  // The subscriber may dial before the demo listens; it redials with backoff up to RETRY_MAX_MS
  // (2 s). A demo that lives longer than that (10 epochs × 400 ms) is always found while it runs,
  // and its socket sink's backlog then sends every row logged before.
  const child = spawnCli(['demo', '--dir', 'live', '--epochs', '10', '--pace', '400', '--socket', String(port), '--quiet'], { cwd, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(() => child.kill());
  const rows: Array<Record<string, unknown>> = [];
  const live = connect({ port, reconnect: true });
  // If the demo ends before the last row arrives (it could not bind, say), end the wait with a failure, not a hang.
  void exited.then(() => setTimeout(() => live.destroy(new Error(`the demo exited; ${rows.length} rows received`)), patient(2000)).unref());
  for await (const row of live) {
    rows.push(row as Record<string, unknown>);
    if ((row as Record<string, unknown>).$table === 'eval') break; // the last row of the run
  }
  t.equal(rows.length, 10 * 16 + 10 + 1, 'every grad_step, epoch and eval row');
  t.same(
    rows.map((r) => r.$seq),
    rows.map((_, i) => i + 1),
  );
  t.equal(await exited, 0);
  const bad = rowlog(['demo', '--socket', 'x']);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /--socket/);
});
