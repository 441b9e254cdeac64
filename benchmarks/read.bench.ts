/**
 * Read path (run by `npm run bench`): `rowlog query` against native jq on a generated
 * 200,000-row log, plain and gzipped, for a streaming filter and a slurp; peak memory of the
 * streaming query; and `rowlog tail -n 20` against `zcat FILE | tail -n 20` on a ≥ 500 MB
 * blocked-gzip file. Every pair is checked to print the same results. Native jq is installed
 * by .ci/run for the tests; when it is missing the bench says so and skips those comparisons.
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

/** Runs a shell command `times` times; the best wall time in ms, and its stdout. */
function best(cmd: string, times = 3): { ms: number; out: string } {
  let ms = Infinity;
  let out = '';
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    out = execFileSync('sh', ['-c', cmd], { encoding: 'utf8', maxBuffer: 1 << 30 });
    ms = Math.min(ms, performance.now() - t0);
  }
  return { ms, out };
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
  if (!has('jq')) {
    console.log('  native jq is not installed (.ci/run installs it for the tests): query comparisons skipped');
  } else {
    const rows: Array<[string, string, string]> = [
      ['filter, plain .jsonl', ours(`-c ${q(filter)} ${q(plain)}`), `jq -c ${q(filter)} ${q(plain)}`],
      ['filter, .jsonl.gz (jq: zcat | jq)', ours(`-c ${q(filter)} ${q(gz)}`), `zcat ${q(gz)} | jq -c ${q(filter)}`],
      ['slurp, plain .jsonl', ours(`-c -s ${q(slurp)} ${q(plain)}`), `jq -c -s ${q(slurp)} ${q(plain)}`],
    ];
    for (const [label, mine, theirs] of rows) {
      const a = best(mine);
      const b = best(theirs);
      const same = JSON.stringify(a.out.trim().split('\n').map((l) => JSON.parse(l) as unknown)) === JSON.stringify(b.out.trim().split('\n').map((l) => JSON.parse(l) as unknown));
      console.log(`  query ${label.padEnd(34)} rowlog ${sec(a.ms)}  jq ${sec(b.ms)}  → ${ratio(b.ms, a.ms)} jq's speed${same ? '' : '  (OUTPUTS DIFFER)'}`);
    }
  }
  console.log(`  peak RSS of a streaming query over the .jsonl.gz: ${peakRss(['query', '-c', filter, gz]).toFixed(0)} MB`);

  const big = makeBigGz(TAIL_MB);
  const mb = (fs.statSync(big).size / 1e6).toFixed(0);
  const mine = best(`${q(process.execPath)} ${q(cli)} tail -n 20 ${q(big)}`);
  const theirs = best(`zcat ${q(big)} | tail -n 20`, 1);
  const same = mine.out === theirs.out;
  console.log(`  tail -n 20 of a ${mb} MB .jsonl.gz: rowlog ${sec(mine.ms)}  zcat | tail ${sec(theirs.ms)}  → ${ratio(theirs.ms, mine.ms)} faster${same ? '' : '  (OUTPUTS DIFFER)'}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
