/**
 * Crash safety of blocked-gzip JSONL (docs/DESIGN.md §4): a writer SIGKILLed at random moments leaves a
 * file that gzip and bgzip accept (or, when the kill landed inside a write, whose members before
 * a torn last one they accept), holding exactly a prefix of the rows logged, losing at most the
 * rows after its last completed flush; reopening repairs a torn end and appends cleanly.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { scanMembers } from '../lib/io/bgzf-file.js';
import { isTornTail } from '../lib/io/gzip-repair.js';
import { ROOT, run, tmpdir } from './helpers.js';
import { needs } from './peers.js';

const fixture = path.join(ROOT, 'test', 'fixtures', 'crash-writer.mjs');
const KILLS = 20;

/**
 * Runs the writer until its first completed flush (so the file holds at least one member),
 * kills it `ms` later, and returns the last `flushed N` it printed.
 */
function killAfter(file: string, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let flushed = -1;
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const all = [...out.matchAll(/flushed (\d+)\n/g)];
      flushed = Number(all.at(-1)?.[1] ?? -1);
      if (flushed >= 0 && timer === undefined) timer = setTimeout(() => child.kill('SIGKILL'), ms);
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`writer ended by itself (${String(signal)})`));
      else resolve(flushed);
    });
  });
}

function zcatLines(file: string): string[] {
  const r = run('zcat', [file]);
  if (r.status !== 0) throw new Error(`zcat failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

/**
 * A file SIGKILLed in the middle of writing a member: Linux may stop a write() of several pages
 * between two pages when a fatal signal arrives while it waits (dirty-page throttling on a busy
 * disk), so the last member can be cut short however the writer writes it (docs/DESIGN.md §4).
 * What must still hold: the bytes after the last whole member are the start of ONE member (the
 * rule the repair on reopen cuts by, isTornTail), and everything before them is whole gzip.
 * Returns the file's whole-member prefix, or undefined when the damage is anything else.
 */
function tornTailPrefix(file: string): string | undefined {
  const bytes = fs.readFileSync(file);
  const fd = fs.openSync(file, 'r');
  const scan = scanMembers(fd, bytes.length);
  fs.closeSync(fd);
  if (scan.wholeEnd >= bytes.length || !isTornTail(bytes.subarray(scan.wholeEnd))) return undefined;
  const prefix = `${file}.whole`;
  fs.writeFileSync(prefix, bytes.subarray(0, scan.wholeEnd));
  return prefix;
}

t.test(`SIGKILL at ${KILLS} random moments: valid gzip, a prefix of the rows, nothing flushed lost`, async (t) => {
  const bgzip = needs(t, 'bgzip', 'bgzip -t after each kill');
  const dir = tmpdir(t);
  let torn = 0;
  for (let k = 0; k < KILLS; k++) {
    const file = path.join(dir, `run${k}.jsonl.gz`);
    const ms = Math.floor(Math.random() * 500);
    const flushed = await killAfter(file, ms);
    let gz = run('gzip', ['-t', file]);
    // A torn last member (a kill inside a write) is cut on reopen; the members before it must be whole.
    const whole = gz.status === 0 ? file : tornTailPrefix(file);
    if (whole !== file) {
      torn++;
      t.comment(`kill ${k} after ${ms} ms landed inside a write: the last member is torn (${whole === undefined ? 'and more is damaged' : 'only it'})`);
      if (whole !== undefined) gz = run('gzip', ['-t', whole]);
    }
    const bgz = bgzip ? run('bgzip', ['-t', whole ?? file]) : { status: 0, stderr: '' };
    const lines = zcatLines(whole ?? file);
    const rows = lines.map((l) => JSON.parse(l) as { i: number; $step: number });
    const prefix = rows.every((r, i) => r.i === i && r.$step === i);
    if (gz.status !== 0 || bgz.status !== 0 || !prefix || rows.length < flushed) {
      t.fail(`kill ${k} after ${ms} ms`, { gzip: gz.stderr, bgzip: bgz.stderr, rows: rows.length, flushed, prefix });
      continue;
    }
    t.pass(`kill ${k} after ${ms} ms: gzip -t and bgzip -t pass, rows 0..${rows.length - 1} (last flush ${flushed})`);

    if (k % 5 === 0) {
      // Reopen (repairs a torn last member) and log one more row.
      const append = run(process.execPath, [fixture, file, 'append-one']);
      t.equal(append.status, 0, append.stderr);
      t.equal(run('gzip', ['-t', file]).status, 0, 'valid gzip after the append');
      if (bgzip) t.equal(run('bgzip', ['-t', file]).status, 0, 'valid BGZF after the append');
      const after = zcatLines(file);
      t.same(after.slice(0, -1), lines, 'every recovered row is still there');
      t.match(JSON.parse(after.at(-1) ?? 'null'), { $step: -1, appended: true }, 'and the new row follows them');
      const bytes = fs.readFileSync(file);
      t.equal(bytes.subarray(-28).toString('hex'), '1f8b08040000000000ff0600424302001b0003000000000000000000', 'ends with the BGZF EOF member');
    }
  }
  // A kill inside a write is the exception (one in twenty kills on a disk busy with the whole suite);
  // a writer that tore members of its own accord would tear most of them.
  t.ok(torn <= KILLS / 4, `${torn} of ${KILLS} kills left a torn last member (at most ${KILLS / 4})`);
});
