/**
 * Read path (run by `npm run bench`): `rowlog query` against native jq and gojq on a generated
 * 200,000-row log, plain and gzipped, for a streaming filter and a slurp, each contender's
 * median of 3 runs side by side (targets, rowlog issue 11: filter ≥ 1.5× jq and ≥ 1.0× gojq,
 * gz filter ≥ 1.5× `zcat | jq`, slurp ≥ 1.0× `jq -s`); peak memory of the streaming query and of
 * a slurp of a ≥ 200 MB log; the time of a 10 MB and a 40 MB line (linear: about 4×); and
 * `rowlog tail -n 20` against `zcat FILE | tail -n 20` on a ≥ 500 MB blocked-gzip file. Every
 * pair is checked to print the same results. jq and gojq are installed by .ci/run for the
 * tests; a missing one is said and its comparisons skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BGZF_EOF, BGZF_MAX_INPUT, bgzfMemberSync } from '../lib/format/bgzf.js';
import { jsonlSink } from '../sinks/jsonl.js';

const ROWS = Number(process.env.BENCH_QUERY_ROWS ?? 200_000);
const TAIL_MB = Number(process.env.BENCH_TAIL_MB ?? 500);
const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'lib', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-readbench-'));

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Runs a shell command `times` times; the median wall time in ms, and its stdout. */
function median(cmd: string, times = 3): { ms: number; out: string } {
  const all: number[] = [];
  let out = '';
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    out = execFileSync('sh', ['-c', cmd], { encoding: 'utf8', maxBuffer: 1 << 30 });
    all.push(performance.now() - t0);
  }
  all.sort((a, b) => a - b);
  return { ms: all[Math.floor(all.length / 2)] as number, out };
}

/**
 * Peak RSS (MB) of `node cli args…`: the child's own `VmHWM` at exit (not `ru_maxrss`, which
 * starts at the parent's RSS at fork).
 */
function peakRss(args: string[]): number {
  const wrapper = `
    const [cli, ...rest] = process.argv.slice(1);
    process.argv = [process.argv[0], cli, ...rest];
    process.stdout.write = () => true;
    process.on('exit', () => {
      const m = /^VmHWM:\\s*(\\d+) kB/m.exec(require('fs').readFileSync('/proc/self/status', 'utf8'));
      require('fs').writeSync(3, m === null ? 'NaN' : m[1]);
    });
    import(require('url').pathToFileURL(cli).href);`;
  const r = spawnSync(process.execPath, ['-e', wrapper, cli, ...args], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  return Number(r.output[3]) / 1024;
}

async function makeLog(): Promise<{ plain: string; gz: string }> {
  const plain = path.join(dir, 'train.jsonl');
  const gz = path.join(dir, 'train.jsonl.gz');
  for (const file of [plain, gz]) {
    const sink = jsonlSink({ path: file });
    for (let i = 0; i < ROWS; i++) {
      const data: Record<string, number> = { loss: 1 / (i + 1) + Math.random() * 1e-3, lr: 1e-3 };
      for (let k = 0; k < 20; k++) data[`m${k}`] = Math.sqrt(i + k) * 0.001;
      sink.write({ table: 'train', level: 5, step: i, time: 1_700_000_000_000 + i, data });
    }
    await new Promise<void>((resolve) => sink.end(resolve));
  }
  return { plain, gz };
}

/** A blocked-gzip file of at least `mb` MB of high-entropy rows, written member by member. */
function makeBigGz(mb: number): string {
  const file = path.join(dir, 'big.jsonl.gz');
  const fd = fs.openSync(file, 'w');
  let size = 0;
  let step = 0;
  while (size < mb * 1e6) {
    let text = '';
    while (text.length < BGZF_MAX_INPUT - 400) {
      text += `{"$step":${step},"$time":${1_700_000_000_000 + step},"$level":5,"a":${Math.random()},"b":${Math.random()},"c":${Math.random()}}\n`;
      step++;
    }
    const member = bgzfMemberSync(Buffer.from(text), 1);
    fs.writeSync(fd, member);
    size += member.length;
  }
  fs.writeSync(fd, BGZF_EOF);
  fs.closeSync(fd);
  return file;
}

const ratio = (base: number, ours: number) => `${(base / ours).toFixed(2)}×`;
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

try {
  console.log(`rowlog read bench: ${ROWS.toLocaleString('en-US')}-row log; ${os.cpus().length} cores, node ${process.version}`);
  const { plain, gz } = await makeLog();
  const filter = 'select(."$step" % 100 == 0) | .loss';
  const slurp = 'sort_by(.loss) | .[0]';
  const ours = (args: string) => `${q(process.execPath)} ${q(cli)} query ${args}`;
  const peers = ['jq', 'gojq'].filter(has);
  for (const p of ['jq', 'gojq']) if (!peers.includes(p)) console.log(`  ${p} is not installed (.ci/run installs it for the tests): its comparisons skipped`);
  const rows: Array<{ label: string; mine: string; theirs: Array<[string, string]>; target: string }> = [
    {
      label: 'filter, plain .jsonl',
      mine: ours(`-c ${q(filter)} ${q(plain)}`),
      theirs: peers.map((p) => [p, `${p} -c ${q(filter)} ${q(plain)}`] as [string, string]),
      target: '≥ 1.5× jq, ≥ 1.0× gojq',
    },
    {
      label: 'filter, .jsonl.gz',
      mine: ours(`-c ${q(filter)} ${q(gz)}`),
      theirs: peers.map((p) => [`zcat | ${p}`, `zcat ${q(gz)} | ${p} -c ${q(filter)}`] as [string, string]),
      target: '≥ 1.5× zcat | jq',
    },
    {
      label: 'slurp, plain .jsonl',
      mine: ours(`-c -s ${q(slurp)} ${q(plain)}`),
      theirs: peers.map((p) => [`${p} -s`, `${p} -c -s ${q(slurp)} ${q(plain)}`] as [string, string]),
      target: '≥ 1.0× jq -s',
    },
  ];
  // As values with sorted keys: gojq sorts object keys.
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sorted(x)])) : v;
  const values = (out: string) => JSON.stringify(out.trim().split('\n').map((l) => sorted(JSON.parse(l))));
  for (const { label, mine, theirs, target } of rows) {
    const a = median(mine);
    let line = `  query ${label.padEnd(22)} rowlog ${sec(a.ms)}`;
    for (const [name, cmd] of theirs) {
      const b = median(cmd);
      line += `  ${name} ${sec(b.ms)} (rowlog ${ratio(b.ms, a.ms)})${values(a.out) === values(b.out) ? '' : ' OUTPUTS DIFFER'}`;
    }
    console.log(`${line}  target ${target}`);
  }
  console.log(`  peak RSS of a streaming query over the .jsonl.gz: ${peakRss(['query', '-c', filter, gz]).toFixed(0)} MB`);

  // Slurp of a log of ≥ 200 MB: the same rows repeated.
  const big200 = path.join(dir, 'train200.jsonl');
  const once = fs.readFileSync(plain);
  const copies = Math.max(1, Math.ceil(200e6 / once.length));
  fs.writeFileSync(big200, Buffer.concat(Array.from({ length: copies }, () => once)));
  const mb200 = (fs.statSync(big200).size / 1e6).toFixed(0);
  console.log(`  peak RSS of a slurp (-s 'length') of a ${mb200} MB log: ${peakRss(['query', '-c', '-s', 'length', big200]).toFixed(0)} MB`);
  fs.rmSync(big200);

  // Long lines: linear means the 40 MB line takes about 4× the 10 MB one.
  const lineMs: number[] = [];
  for (const mb of [10, 40]) {
    const file = path.join(dir, `line${mb}.jsonl`);
    fs.writeFileSync(file, `{"s":"${'y'.repeat(mb * 1e6)}"}\n`);
    lineMs.push(median(ours(`-c '.s | length' ${q(file)}`)).ms);
    fs.rmSync(file);
  }
  const [ms10, ms40] = lineMs as [number, number];
  console.log(`  one line of 10 MB ${sec(ms10)}, of 40 MB ${sec(ms40)}: ${(ms40 / ms10).toFixed(1)}× for 4× the bytes (linear ≈ 4×)`);

  const big = makeBigGz(TAIL_MB);
  const mb = (fs.statSync(big).size / 1e6).toFixed(0);
  const mine = median(`${q(process.execPath)} ${q(cli)} tail -n 20 ${q(big)}`);
  const theirs = median(`zcat ${q(big)} | tail -n 20`, 1);
  const same = mine.out === theirs.out;
  console.log(`  tail -n 20 of a ${mb} MB .jsonl.gz: rowlog ${sec(mine.ms)}  zcat | tail ${sec(theirs.ms)}  → ${ratio(theirs.ms, mine.ms)} faster${same ? '' : '  (OUTPUTS DIFFER)'}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
