/**
 * Chaos test (issue 9): 30 trials of a trainer (test/fixtures/chaos-writer.mjs) logging several
 * tables at different rates into a run folder with the default sinks, new keys arriving now and
 * then (so the CSV sink rewrites files with a union header), each trial injecting ONE fault at a
 * random moment. Then the folder is checked, reopened by another child (which logs 3 rows per
 * table and closes) and checked again.
 *
 * The oracle: after each completed `log.flush()` the child prints, per table, how many rows it
 * had logged before that flush started. Rows are identified per table by (g, i): the child's
 * generation and the row's index in it. Every check, in every sink (.jsonl.gz and .csv):
 *   - `gzip -t` and `bgzip -t` pass on every .jsonl.gz; Python's csv module reads every .csv and
 *     every row has as many cells as the header, or, while a CSV rewrite was cut short by the
 *     fault (before the reopen), at most as many more as the sidecar `<t>.csv.columns` names for
 *     that header (docs/DESIGN.md §4); after the reopen no sidecar is left;
 *   - no row (g, i) appears twice; `$step` values are unique per table and grow with (g, i), so
 *     a reopened folder continues the steps instead of repeating them;
 *   - every row of the oracle is there, and no row of a generation that had no logger;
 *   - extra keys are exactly the ones the row was logged with (other cells empty, in CSV).
 * Per fault (six kinds, round-robin, five rounds; random moments within each):
 *   - kill: SIGKILL within 150 ms after createLogger returned (every other round: before a flush can
 *     complete, so the files are as young as they get) or up to 700 ms after the first flush.
 *     Oracle: the last completed flush.
 *   - kill-rewrite: on a copy of a seed folder (closed normally; wide.csv 2.5 MB), SIGKILL within
 *     40 ms after the child logged the 1st, 2nd or 3rd row with a new key in `wide` (a union-header
 *     rewrite of the big CSV is then under way). Oracle: every seed row, and the last flush.
 *   - kill-reopen: on a copy of the seed folder, SIGKILL within 60 ms after the child began
 *     createLogger on it. Oracle: every seed row, and the last flush if one completed.
 *   - full-disk: the folder is a 1 MB tmpfs; the child logs until the disk refuses bytes, then is
 *     SIGKILLed or closed. Oracle: the flush before the last one completed before the first
 *     warning (one flush of margin: the warning may trail the failed write). Before the reopen a
 *     torn tail is allowed (a cut last gzip member or CSV line, the disk refused the rest) and the
 *     gzip tools are not run; the folder is then grown to 64 MB (the user freed space) and after
 *     the reopen everything above holds, torn tails cut away, no temp file left.
 *   - emfile: the child runs under a file limit of 256 (`prlimit --nofile`) and logs 200 more
 *     tables, then is closed (oracle: every row logged) or SIGKILLed (oracle: last flush).
 *   - second-writer: the first child pauses (flushed) and is SIGSTOPped; a second child on the
 *     same folder must exit with `ERR_RUN_LOCKED` (status 10) and leave every file as it was
 *     (names, sizes, contents); the first resumes and is SIGKILLed (oracle: last flush) or
 *     closed (oracle: every row logged).
 * After every reopen (a fault's dead writer leaves its lock behind: the reopen takes it over):
 * the reopening child exits 0, its rows are there with steps after all earlier ones, and no
 * `*.tmp` file is left in the folder.
 *
 * Synchronisation is on the children's lines and exits only; random delays pick *when* a fault
 * strikes. The whole file takes ~65 s on this 2-core machine at load 9 (one trial 1–4 s).
 * To look at one kind: CHAOS_FAULTS=emfile,full-disk CHAOS_TRIALS=4 npx tap test/chaos.test.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { ROOT, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { patient } from './wait.js';

// Bounded: 30 trials take ~65 s quiet, 135-185 s beside two busy loops and a second suite; a
// hung child is SIGKILLed by its 40 s watchdog. The file's ceiling is patient (test/wait.ts).
t.setTimeout(patient(60_000));

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'chaos-writer.mjs');
const KEY_EVERY = 100; // as in the fixture
const ALL_FAULTS = ['kill', 'kill-rewrite', 'kill-reopen', 'full-disk', 'emfile', 'second-writer'] as const;
type Fault = (typeof ALL_FAULTS)[number];
const FAULTS = (process.env.CHAOS_FAULTS?.split(',') as Fault[] | undefined) ?? ALL_FAULTS;
const TRIALS = Number(process.env.CHAOS_TRIALS ?? 30);
type Counts = Record<string, number>;
/** Per generation, the rows per table that must be on disk. */
type Oracle = Map<number, Counts>;

const HAVE_BGZIP = peer('bgzip') !== undefined;
const HAVE_PRLIMIT = peer('prlimit') !== undefined;
// The interpreter itself, not a version manager's shim (pyenv's costs ~0.2 s a call, 4 calls a trial).
const PYTHON = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout?.trim() || 'python3';

// ---------------------------------------------------------------------------------------------
// Children

interface Child {
  proc: ChildProcess;
  lines: string[];
  stderr: string;
  /** Resolves with the first line (from now on or already seen) matching `re`, or null on exit. */
  waitLine(re: RegExp): Promise<string | null>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  send(cmd: string): void;
  /** The counts of the last `F`/`P`/`C` line. */
  last(kinds?: string): Counts | undefined;
}

function start(dir: string, mode: string, gen: number, cfg: object = {}, fdLimit?: number): Child {
  const args = [FIXTURE, dir, mode, String(gen), JSON.stringify(cfg)];
  const [cmd, argv] =
    fdLimit === undefined
      ? [process.execPath, args]
      : HAVE_PRLIMIT
        ? ['prlimit', [`--nofile=${fdLimit}:${fdLimit}`, process.execPath, ...args]]
        : ['sh', ['-c', `ulimit -n ${fdLimit} && exec "$0" "$@"`, process.execPath, ...args]];
  const proc = spawn(cmd as string, argv as string[], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string | null) => void }> = [];
  let buf = '';
  const child: Child = {
    proc,
    lines,
    stderr: '',
    waitLine(re) {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(null);
      return new Promise((resolve) => waiters.push({ re, resolve }));
    },
    exit: new Promise((resolve) => {
      proc.on('close', (code, signal) => {
        for (const w of waiters.splice(0)) w.resolve(null);
        resolve({ code, signal });
      });
    }),
    send(cmd) {
      if (proc.stdin?.writable) proc.stdin.write(`${cmd}\n`);
    },
    last(kinds = 'FPC') {
      for (let k = lines.length - 1; k >= 0; k--) {
        const l = lines[k] as string;
        if (kinds.includes(l[0] as string) && l[1] === ' ') return JSON.parse(l.slice(2)) as Counts;
      }
      return undefined;
    },
  };
  proc.stdin?.on('error', () => undefined); // EPIPE once the child is gone
  proc.stdout?.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    for (let nl; (nl = buf.indexOf('\n')) >= 0; ) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      for (let k = waiters.length - 1; k >= 0; k--) {
        const w = waiters[k] as (typeof waiters)[number];
        if (w.re.test(line)) {
          waiters.splice(k, 1);
          w.resolve(line);
        }
      }
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => {
    if (child.stderr.length < 20_000) child.stderr += s;
  });
  // A watchdog, so a hung child fails its trial instead of the whole file.
  const dog = setTimeout(() => proc.kill('SIGKILL'), 40_000);
  void child.exit.then(() => clearTimeout(dog));
  return child;
}

/** A random delay: it picks *when* a fault strikes, it never waits for a result. */
function randomDelay(maxMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * maxMs)));
}

// ---------------------------------------------------------------------------------------------
// Reading the folder

interface Row {
  step: number;
  g: number;
  i: number;
  /** The row's other non-empty data keys, sorted, joined by commas. */
  extras: string;
}
interface SinkRead {
  rows: Row[];
  problems: string[];
}

function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...walk(dir, r));
    else out.push(r);
  }
  return out;
}

const META = new Set(['$step', '$time', '$level', 'g', 'i', 'v']);

function readGz(file: string, tornOk: boolean): SinkRead {
  const problems: string[] = [];
  const bytes = fs.readFileSync(file);
  let text: string;
  try {
    text = zlib.gunzipSync(bytes).toString('utf8');
  } catch (err) {
    if (!tornOk) problems.push(`does not decode: ${(err as Error).message}`);
    text = zlib.gunzipSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString('utf8');
  }
  const lines = text.split('\n');
  const tail = lines.pop();
  if (tail !== '' && tail !== undefined && !tornOk) problems.push(`last line has no line end: ${tail.slice(0, 80)}`);
  const rows: Row[] = [];
  lines.forEach((l, n) => {
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      rows.push({
        step: o.$step as number,
        g: o.g as number,
        i: o.i as number,
        extras: Object.keys(o)
          .filter((k) => !META.has(k))
          .sort()
          .join(','),
      });
    } catch {
      problems.push(`line ${n + 1} is not JSON: ${l.slice(0, 80)}`);
    }
  });
  return { rows, problems };
}

// Python's csv module reads each file; per row it reports $step, g, i and the non-empty cells of
// the other data columns. A torn last line (no line end) is reported, and dropped when allowed.
const PY_CSV = `
import csv, io, json, sys
torn_ok = sys.argv[1] == '1'
out = {}
for p in sys.argv[2:]:
    r = {'rows': [], 'problems': []}
    out[p] = r
    try:
        with open(p, newline='') as f:
            data = f.read()
        torn = len(data) > 0 and not data.endswith('\\n')
        if torn and not torn_ok:
            r['problems'].append('last line has no line end: ' + data[-80:].split('\\n')[-1])
        rows = list(csv.reader(io.StringIO(data)))
        if torn:
            rows = rows[:-1]
        if not rows:
            if data != '':
                r['problems'].append('no header')
            continue
        header = rows[0]
        if header[:3] != ['$step', '$time', '$level']:
            r['problems'].append('header starts ' + ','.join(header[:3]))
        # A rewrite cut short by the fault: rows may carry trailing fields for keys the header
        # lacks yet, named (in order) by the sidecar <file>.columns for this exact header.
        trailing = []
        try:
            with open(p + '.columns') as f:
                for e in json.load(f).get('entries', []):
                    if e.get('base') == header:
                        trailing = e.get('extras', [])
        except FileNotFoundError:
            pass
        names = header + trailing
        idx = {k: n for n, k in enumerate(names)}
        for ln, row in enumerate(rows[1:], 2):
            if len(row) < len(header) or len(row) > len(names):
                r['problems'].append('row %d has %d cells, header %d (+%d named by the sidecar)' % (ln, len(row), len(header), len(trailing)))
                continue
            extra = [(n, k) for n, k in enumerate(names[:len(row)]) if k not in ('$step', '$time', '$level', 'g', 'i', 'v')]
            def num(k):
                try:
                    return int(row[idx[k]])
                except Exception:
                    return None
            r['rows'].append([num('$step'), num('g'), num('i'), ','.join(sorted(k for n, k in extra if row[n] != ''))])
    except Exception as e:
        r['problems'].append('csv: %s: %s' % (type(e).__name__, e))
json.dump(out, sys.stdout)
`;

function readCsvs(files: string[], tornOk: boolean): Map<string, SinkRead> {
  const res = new Map<string, SinkRead>();
  if (files.length === 0) return res;
  const r = spawnSync(PYTHON, ['-c', PY_CSV, tornOk ? '1' : '0', ...files], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python3 csv failed: ${r.stderr}`);
  const parsed = JSON.parse(r.stdout) as Record<string, { rows: Array<[number, number, number, string]>; problems: string[] }>;
  for (const [f, v] of Object.entries(parsed)) {
    res.set(f, { problems: v.problems, rows: v.rows.map(([step, g, i, extras]) => ({ step, g, i, extras })) });
  }
  return res;
}

/** The extra keys the fixture logs with row i of `table` in generation g. */
function expectedExtras(table: string, g: number, i: number): string[] {
  if (table === 'wide') {
    const n = g === 0 ? 30 : Math.floor(i / KEY_EVERY) + 1;
    return Array.from({ length: n }, (_, j) => `k${g}_${j}`).sort();
  }
  if (table === 'mid' && i >= 50 && g > 0) return [`late${g}`];
  return [];
}

interface CheckOpts {
  /** Full disk, before the reopen: a torn tail is allowed and the gzip tools are not run. */
  tornOk?: boolean;
  /** After a reopen: no temp file may be left. */
  reopened?: boolean;
}

/** Checks the folder against the oracle; returns the problems found and the oracle rows checked. */
function checkFolder(dir: string, oracle: Oracle, gens: ReadonlySet<number>, opts: CheckOpts = {}): { problems: string[]; checked: number } {
  const problems: string[] = [];
  const files = walk(dir);
  const gz = files.filter((f) => f.endsWith('.jsonl.gz'));
  const csvs = files.filter((f) => f.endsWith('.csv'));
  if (opts.reopened) {
    const tmp = files.filter((f) => /\.tmp$/.test(f));
    if (tmp.length > 0) problems.push(`temp files left after the reopen: ${tmp.slice(0, 5).join(', ')}`);
    // a closed logger has finished every CSV rewrite: no row still carries sidecar-named fields
    const side = files.filter((f) => f.endsWith('.csv.columns'));
    if (side.length > 0) problems.push(`CSV rewrites left unfinished after the reopen: ${side.slice(0, 5).join(', ')}`);
  }
  const abs = (f: string) => path.join(dir, f);
  if (!opts.tornOk && gz.length > 0) {
    const r = spawnSync('gzip', ['-t', ...gz.map(abs)], { encoding: 'utf8' });
    if (r.status !== 0) problems.push(`gzip -t: ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
    if (HAVE_BGZIP) {
      // bgzip -t takes one file; a shell loop spares one spawn per file from Node.
      // Its warning that a killed writer left no EOF member is expected: only the status counts.
      const b = spawnSync('sh', ['-c', 'for f; do e=$(bgzip -t "$f" 2>&1) || echo "$f: $e"; done', 'sh', ...gz.map(abs)], {
        encoding: 'utf8',
      });
      const bad = (b.stdout + b.stderr).trim();
      if (bad !== '') problems.push(`bgzip -t: ${bad.split('\n').slice(0, 4).join(' | ')}`);
    }
  }
  const sinks = new Map<string, Map<string, SinkRead>>(); // table → sink → rows
  const put = (table: string, sink: string, read: SinkRead) => {
    if (!sinks.has(table)) sinks.set(table, new Map());
    sinks.get(table)?.set(sink, read);
  };
  for (const f of gz) put(f.slice(0, -'.jsonl.gz'.length), 'jsonl.gz', readGz(abs(f), opts.tornOk === true));
  const csvRead = readCsvs(csvs.map(abs), opts.tornOk === true);
  for (const f of csvs) put(f.slice(0, -'.csv'.length), 'csv', csvRead.get(abs(f)) as SinkRead);

  const tables = new Set<string>([...sinks.keys()]);
  for (const counts of oracle.values()) for (const [tb, n] of Object.entries(counts)) if (n > 0) tables.add(tb);
  let checked = 0;
  for (const table of [...tables].sort()) {
    for (const sink of ['jsonl.gz', 'csv']) {
      const where = `${table}.${sink}`;
      const read = sinks.get(table)?.get(sink) ?? { rows: [], problems: [] };
      for (const p of read.problems.slice(0, 3)) problems.push(`${where}: ${p}`);
      const seen = new Map<string, Row>();
      const steps = new Set<number>();
      let dups = 0;
      let stepDups = 0;
      let badRows = 0;
      let badExtras = 0;
      let strays = 0;
      for (const r of read.rows) {
        if (!Number.isSafeInteger(r.step) || !Number.isSafeInteger(r.g) || !Number.isSafeInteger(r.i)) {
          if (badRows++ === 0) problems.push(`${where}: a row without integer $step/g/i: ${JSON.stringify(r)}`);
          continue;
        }
        if (!gens.has(r.g) && strays++ === 0) problems.push(`${where}: rows of generation ${r.g}, which had no logger`);
        const id = `${r.g}:${r.i}`;
        if (seen.has(id)) {
          if (dups++ === 0) problems.push(`${where}: row g=${r.g} i=${r.i} is there more than once`);
        } else seen.set(id, r);
        if (steps.has(r.step)) {
          if (stepDups++ === 0) problems.push(`${where}: $step ${r.step} repeats`);
        } else steps.add(r.step);
        const want = expectedExtras(table, r.g, r.i).join(',');
        if (r.extras !== want && badExtras++ === 0) {
          problems.push(`${where}: row g=${r.g} i=${r.i} has keys [${r.extras}], was logged with [${want}]`);
        }
      }
      if (dups > 1) problems.push(`${where}: ${dups} duplicated rows in all`);
      if (stepDups > 1) problems.push(`${where}: ${stepDups} repeated steps in all`);
      // Steps grow with (g, i): a reopened folder continues them.
      const ordered = [...seen.values()].sort((a, b) => a.g - b.g || a.i - b.i);
      for (let k = 1; k < ordered.length; k++) {
        const [a, b] = [ordered[k - 1] as Row, ordered[k] as Row];
        if (b.step <= a.step) {
          problems.push(`${where}: row g=${b.g} i=${b.i} has $step ${b.step}, not after g=${a.g} i=${a.i}'s ${a.step}`);
          break;
        }
      }
      for (const [g, counts] of oracle) {
        const n = counts[table] ?? 0;
        let missing = 0;
        let first = -1;
        for (let i = 0; i < n; i++) {
          if (!seen.has(`${g}:${i}`)) {
            if (missing++ === 0) first = i;
          }
        }
        checked += n;
        if (missing > 0) problems.push(`${where}: ${missing} of the ${n} flushed rows of generation ${g} missing (first i=${first})`);
      }
    }
  }
  // One line per problem up to a point: 300 tables that all fail the same way say it well enough.
  const MAX = 14;
  if (problems.length > MAX) problems.splice(MAX, problems.length, `… and ${problems.length - MAX} more problems`);
  return { problems, checked };
}

// ---------------------------------------------------------------------------------------------
// Faults

/** Copies every file under `dir` (names, sizes, hashes) for the second-writer check. */
function snapshot(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of walk(dir)) {
    const b = fs.readFileSync(path.join(dir, f));
    m.set(f, `${b.length} ${crypto.createHash('sha1').update(b).digest('hex')}`);
  }
  return m;
}

/** Resolves once process `pid` is stopped (state T in /proc/<pid>/stat), or gone. */
async function stopped(pid: number): Promise<void> {
  for (;;) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return;
    }
    if (/^\d+ \(.*\) [Tt]/.test(stat)) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [f, v] of b) if (a.get(f) !== v) out.push(a.has(f) ? `${f} changed` : `${f} created`);
  for (const f of a.keys()) if (!b.has(f)) out.push(`${f} removed`);
  return out;
}

interface TrialResult {
  oracle: Oracle;
  problems: string[];
  note: string;
  tornOk?: boolean;
  cfg?: object;
  fdLimit?: number;
  /** Run before the reopen (e.g. give the full disk space again). */
  beforeReopen?: () => void;
}

/** Ends `c` by SIGKILL or by `close` (then it must exit 0 and say C); returns the oracle counts. */
async function endChild(c: Child, how: 'kill' | 'close', problems: string[]): Promise<Counts | undefined> {
  if (how === 'kill') c.proc.kill('SIGKILL');
  else c.send('close');
  const { code, signal } = await c.exit;
  if (how === 'kill') {
    if (signal !== 'SIGKILL') problems.push(`the writer ended by itself before the kill (${code ?? signal}): ${c.stderr.slice(0, 300)}`);
    return c.last('FP');
  }
  if (code !== 0 || c.last('C') === undefined) problems.push(`the writer did not close cleanly (${code ?? signal}): ${c.stderr.slice(0, 300)}`);
  return c.last('FPC');
}

async function trialKill(dir: string, k: number): Promise<TrialResult> {
  const problems: string[] = [];
  const c = start(dir, 'run', 1);
  let note: string;
  if (k % 2 === 0) {
    await c.waitLine(/^R$/);
    const ms = Math.floor(Math.random() * 150);
    await randomDelay(ms);
    note = `SIGKILL ≤ ${ms} ms after createLogger`;
  } else {
    await c.waitLine(/^F /);
    const ms = Math.floor(Math.random() * 700);
    await randomDelay(ms);
    note = `SIGKILL ≤ ${ms} ms after the first flush`;
  }
  const counts = await endChild(c, 'kill', problems);
  return { oracle: new Map(counts ? [[1, counts]] : []), problems, note };
}

async function trialKillRewrite(dir: string, seed: string, seedCounts: Counts): Promise<TrialResult> {
  fs.cpSync(seed, dir, { recursive: true });
  const problems: string[] = [];
  const c = start(dir, 'run', 1);
  // The first wide row of generation 1 carries k1_0: the 2.5 MB wide.csv gets a union header.
  const nth = 1 + Math.floor(Math.random() * 3);
  let line: string | null = null;
  for (let n = 0; n < nth; n++) line = await c.waitLine(new RegExp(`^K wide k1_${n}$`));
  const ms = Math.floor(Math.random() * 40);
  await randomDelay(ms);
  const counts = await endChild(c, 'kill', problems);
  if (line === null) problems.push('the writer never logged the new key');
  const oracle: Oracle = new Map([[0, seedCounts]]);
  if (counts) oracle.set(1, counts);
  return { oracle, problems, note: `SIGKILL ≤ ${ms} ms after new key k1_${nth - 1} on the 2.5 MB wide.csv` };
}

async function trialKillReopen(dir: string, seed: string, seedCounts: Counts): Promise<TrialResult> {
  fs.cpSync(seed, dir, { recursive: true });
  const problems: string[] = [];
  const c = start(dir, 'run', 1);
  await c.waitLine(/^O$/);
  const ms = Math.floor(Math.random() * 60);
  await randomDelay(ms);
  const counts = await endChild(c, 'kill', problems);
  const oracle: Oracle = new Map([[0, seedCounts]]);
  if (counts) oracle.set(1, counts);
  const ready = c.lines.includes('R');
  return { oracle, problems, note: `SIGKILL ≤ ${ms} ms into opening the big folder (${ready ? 'after' : 'before'} createLogger returned)` };
}

async function trialFullDisk(dir: string, k: number): Promise<TrialResult | undefined> {
  fs.mkdirSync(dir, { recursive: true });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { encoding: 'utf8' });
  if (m.status !== 0) return undefined;
  const problems: string[] = [];
  const c = start(dir, 'run', 1);
  const t0 = Date.now();
  const warned = await c.waitLine(/^W (W_SINK_ERROR |W_STATUS |.*(ENOSPC|no space left))/i);
  if (warned === null) problems.push(`the writer ended before the disk was full (${c.stderr.slice(0, 300)})`);
  const fullMs = Date.now() - t0;
  // The oracle: the flush before the last one completed before the first refusal was reported.
  const before = c.lines.slice(0, c.lines.indexOf(warned ?? '')).filter((l) => l.startsWith('F '));
  const oracleLine = before.at(-2);
  const ms = Math.floor(Math.random() * 300);
  await randomDelay(ms);
  const how = k % 2 === 0 ? 'kill' : 'close';
  await endChild(c, how, problems);
  const oracle: Oracle = new Map(oracleLine ? [[1, JSON.parse(oracleLine.slice(2)) as Counts]] : []);
  return {
    oracle,
    problems,
    tornOk: true,
    note: `1 MB tmpfs full after ${fullMs} ms (${warned?.split(' ')[1]}), ${how === 'kill' ? 'SIGKILL' : 'close'} ≤ ${ms} ms later`,
    beforeReopen: () => {
      const r = spawnSync('mount', ['-o', 'remount,size=64m', dir], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`remount failed: ${r.stderr}`);
    },
  };
}

async function trialEmfile(dir: string, k: number): Promise<TrialResult> {
  const problems: string[] = [];
  // 256, not lower: issue 9 asks for 2,000 tables under `ulimit -n 256` with the default
  // sinks, so this limit is one the defaults must live with; 408 files are well past it.
  const cfg = { many: 200 };
  const c = start(dir, 'run', 1, cfg, 256);
  await c.waitLine(/^F /);
  const ms = 200 + Math.floor(Math.random() * 800);
  await randomDelay(ms);
  const how = k % 2 === 0 ? 'close' : 'kill';
  const counts = await endChild(c, how, problems);
  return { oracle: new Map(counts ? [[1, counts]] : []), problems, cfg, fdLimit: 256, note: `nofile 256, 204 tables (408 files), ${how} ≤ ${ms} ms after the first flush` };
}

async function trialSecondWriter(dir: string, k: number): Promise<TrialResult> {
  const problems: string[] = [];
  const a = start(dir, 'run', 1);
  await a.waitLine(/^F /);
  await randomDelay(300);
  a.send('pause');
  await a.waitLine(/^P /);
  // Frozen, the first writer cannot write (a timer of its own, say): every change is the second's.
  // It still holds the folder: a stopped process is alive.
  a.proc.kill('SIGSTOP');
  await stopped(a.proc.pid as number);
  const snap = snapshot(dir);
  const b = start(dir, 'run', 2);
  // Today there is no lock: then b opens the folder; it is killed at once.
  const first = await b.waitLine(/^(R|E .*)$/);
  if (first === 'R') b.proc.kill('SIGKILL');
  const { code } = await b.exit;
  if (first === 'R' || code !== 10) {
    problems.push(`the second writer was not refused with ERR_RUN_LOCKED (exit ${code}, ${first ?? 'no output'}): ${b.stderr.slice(0, 200)}`);
  } else if (!/ERR_RUN_LOCKED/.test(first ?? '')) problems.push(`second writer: ${first}`);
  const changed = diff(snap, snapshot(dir));
  if (changed.length > 0) problems.push(`the second writer touched files: ${changed.slice(0, 6).join(', ')}`);
  a.proc.kill('SIGCONT');
  a.send('resume');
  await randomDelay(300);
  const how = k % 2 === 0 ? 'kill' : 'close';
  const counts = await endChild(a, how, problems);
  const second = first === 'R' ? 'opened the folder (then SIGKILLed)' : `said ${first ?? 'nothing'}, exit ${code}`;
  return { oracle: new Map(counts ? [[1, counts]] : []), problems, note: `second writer ${second}; first ${how}` };
}

// ---------------------------------------------------------------------------------------------

t.test(`chaos: ${TRIALS} trials, one fault each, then a reopen`, async (t) => {
  const began = Date.now();
  const root = tmpdir(t, 'rowlog-chaos-');
  needs(t, 'bgzip', 'bgzip -t on every .jsonl.gz of every trial');

  // One big folder, copied for the trials that need an existing run to reopen.
  const seed = path.join(root, 'seed');
  const s = start(seed, 'seed', 0);
  await s.exit;
  const seedCounts = s.last('C');
  t.ok(seedCounts, 'the seed folder (4,000 rows of 30 keys in wide.csv) was written', { stderr: s.stderr.slice(0, 300) });
  if (!seedCounts) return;

  let mountSkipped = false;
  for (let k = 0; k < TRIALS; k++) {
    const fault = FAULTS[k % FAULTS.length] as Fault;
    const dir = path.join(root, `trial${k}`);
    const round = Math.floor(k / FAULTS.length);
    const t0 = Date.now();
    try {
      let res: TrialResult | undefined;
      if (fault === 'kill') res = await trialKill(dir, round);
      else if (fault === 'kill-rewrite') res = await trialKillRewrite(dir, seed, seedCounts);
      else if (fault === 'kill-reopen') res = await trialKillReopen(dir, seed, seedCounts);
      else if (fault === 'full-disk') res = await trialFullDisk(dir, round);
      else if (fault === 'emfile') res = await trialEmfile(dir, round);
      else res = await trialSecondWriter(dir, round);
      if (res === undefined) {
        if (!mountSkipped) t.skip('full disk: needs root to mount a tmpfs', () => undefined);
        mountSkipped = true;
        continue;
      }

      // Generation 0 is the seed, 1 the faulty writer; the refused second writer (2) writes nothing.
      const gens = new Set([0, 1, 9]);
      const after = checkFolder(dir, res.oracle, gens, { tornOk: res.tornOk });
      const problems = [...res.problems, ...after.problems];
      t.ok(problems.length === 0, `trial ${k} ${fault}: ${res.note}: every flushed row there once, files readable`, { problems });

      // Reopen: log 3 more rows per table (generation 9) and close.
      res.beforeReopen?.();
      const re = start(dir, 'reopen', 9, res.cfg, res.fdLimit);
      const { code } = await re.exit;
      const added = re.last('C');
      const oracle = new Map(res.oracle);
      if (added) oracle.set(9, added);
      const reopened = checkFolder(dir, oracle, gens, { reopened: true });
      const reProblems = [...reopened.problems];
      if (code !== 0 || !added) {
        const why = (re.lines.find((l) => l.startsWith('E ')) ?? '') + re.stderr.slice(0, 300);
        reProblems.unshift(`the reopening child failed (exit ${code}): ${why}`);
      }
      t.ok(reProblems.length === 0, `trial ${k} ${fault}: after the reopen, the old rows once, the new ones after them, tools read every file`, {
        problems: reProblems,
      });
      t.comment(`trial ${k} ${fault}: ${res.note}; ${after.checked} rows checked, ${reopened.checked} after the reopen; ${Date.now() - t0} ms`);
    } finally {
      if (fault === 'full-disk') spawnSync('umount', ['-l', dir], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  t.comment(`chaos: ${TRIALS} trials in ${((Date.now() - began) / 1000).toFixed(1)} s`);
});
