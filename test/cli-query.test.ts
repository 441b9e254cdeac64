/** `rowlog query`: what users see on stdout, stderr and in the exit code. */
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { CLI as MAIN, runCli, spawnCli } from './cli.js';
import { run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const rowlog = (args: string[], input?: string) => runCli(['query', ...args], { input });
const JQ = peer('jq') ?? 'jq';

/** `n` rows as JSONL text; `bad` maps 1-based line numbers to replacement text. */
function jsonl(n: number, bad: Record<number, string> = {}): string {
  return Array.from({ length: n }, (_, i) => bad[i + 1] ?? JSON.stringify({ step: i, loss: 1 / (i + 1), name: `r${i}` })).join('\n') + '\n';
}

t.test('a bad filter exits 3 with jq\'s message (as jq 1.7); a bad flag exits 2', async (t) => {
  const haveJq = needs(t, 'jq', "comparing with jq's own message");
  const dir = tmpdir(t);
  const file = path.join(dir, 'a.jsonl');
  fs.writeFileSync(file, jsonl(3));
  const r = rowlog(['.a |||', file]);
  t.equal(r.status, 3);
  t.equal(r.stdout, '');
  if (haveJq) t.equal(r.stderr.split('\n')[0], run(JQ, ['.a |||', file]).stderr.split('\n')[0], 'the same first line as jq');
  t.match(r.stderr, /\n\.a \|\|\|\njq: 1 compile error\n$/);
  const undef = rowlog(['$nope', file]);
  t.equal(undef.status, 3);
  t.match(undef.stderr, /^jq: error: \$nope is not defined at <top-level>, line 1:/);
  for (const args of [['--bogus', '.', file], ['-x', '.', file], [], ['--arg', 'x'], ['--argjson', 'x', '{', '$x', file]]) {
    const u = rowlog(args);
    t.equal(u.status, 2, args.join(' '));
    t.match(u.stderr, /unknown option|missing|needs NAME|must be JSON/, args.join(' '));
  }
});

t.test('3 malformed lines among 1,000: 997 results and one summary line', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'run.jsonl');
  fs.writeFileSync(file, jsonl(1000, { 10: '{"step": 9,', 500: 'NOT JSON', 999: '{"step" 1}' }));
  const r = rowlog(['-c', '.step', file]);
  t.equal(r.status, 0);
  t.equal(r.stdout.split('\n').length - 1, 997);
  t.equal(r.stderr, '3 bad lines skipped (lines 10, 500, 999)\n');

  const strict = rowlog(['--strict', '-c', '.step', file]);
  t.equal(strict.status, 2, 'as jq stops at a parse error');
  t.match(strict.stderr, new RegExp(`^jq: error \\(at ${file.replace(/[.]/g, '\\.')}:10\\): not valid JSON \\(--strict\\)\n$`));
  t.equal(strict.stdout.split('\n').length - 1, 9, 'the rows before it');

  const many = path.join(dir, 'many.jsonl');
  fs.writeFileSync(many, Array.from({ length: 12 }, (_, i) => `bad ${i}\n{"ok":${i}}`).join('\n'));
  const m = rowlog(['-c', '.ok', many]);
  t.equal(m.stdout.split('\n').length - 1, 12);
  t.equal(m.stderr, '12 bad lines skipped (lines 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, …)\n');
});

t.test('a runtime error on one row names that input; the other rows still come out; exit 5 (as jq)', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'r.jsonl');
  fs.writeFileSync(file, '{"a":1}\n{"a":2}\n{"a":"x"}\n{"a":4}\n');
  const r = rowlog(['-c', '.a + 1', file]);
  t.equal(r.stdout, '2\n3\n5\n');
  t.equal(r.stderr, `jq: error (at ${file}:3): string ("x") and number (1) cannot be added\n`);
  t.equal(r.status, 5);
});

t.test('several files in order: .jsonl, .gz (a truncated end is the end), .csv, stdin; --with-file', async (t) => {
  const dir = tmpdir(t);
  const a = path.join(dir, 'a.jsonl');
  fs.writeFileSync(a, '{"x":1}\n{"x":2}'); // no final newline
  const gz = path.join(dir, 'b.jsonl.gz');
  const gzRows = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ x: i + 3, v: Math.sin(i) }));
  const whole = zlib.gzipSync(Buffer.from(`${gzRows.join('\n')}\n`));
  fs.writeFileSync(gz, whole);
  const cut = path.join(dir, 'c.jsonl.gz');
  fs.writeFileSync(cut, whole.subarray(0, whole.length - 30));
  const csv = path.join(dir, 'd.csv');
  fs.writeFileSync(csv, 'x,y\n5,a\n6,b\n');

  const r = rowlog(['-c', '.x', a, gz, csv]);
  t.equal(r.status, 0, r.stderr);
  const xs = (from: number, n: number) => Array.from({ length: n }, (_, i) => `${from + i}\n`).join('');
  t.equal(r.stdout, `1\n2\n${xs(3, 2000)}5\n6\n`);
  const truncated = rowlog(['-c', '.x', cut]);
  t.equal(truncated.status, 0, truncated.stderr);
  t.equal(truncated.stderr, '', 'the torn last line is dropped quietly');
  const kept = truncated.stdout.split('\n').length - 1;
  t.ok(kept > 1900 && kept < 2000, `the rows before the cut (${kept})`);
  t.equal(truncated.stdout, xs(3, kept));

  const wf = rowlog(['-c', '--with-file', 'select(.x < 3 or has("y"))', a, gz, csv]);
  t.equal(wf.stdout, [
    `{"x":1,"$file":${JSON.stringify(a)}}`,
    `{"x":2,"$file":${JSON.stringify(a)}}`,
    `{"x":5,"y":"a","$file":${JSON.stringify(csv)}}`,
    `{"x":6,"y":"b","$file":${JSON.stringify(csv)}}`,
    '',
  ].join('\n'));
  const stdin = rowlog(['-c', '-s', 'map(.x)', '-'], '{"x":7}\nnope\n{"x":8}\n');
  t.equal(stdin.stdout, '[7,8]\n');
  t.equal(stdin.stderr, '1 bad line skipped (line 2)\n');

  const bad2 = path.join(dir, 'e.jsonl');
  fs.writeFileSync(bad2, '{"x":9}\noops\n');
  const multi = rowlog(['-c', '.x', a, bad2]);
  t.equal(multi.stderr, `1 bad line skipped (line ${bad2}:2)\n`, 'with several files, file:line');

  for (const name of ['nope.jsonl', 'nope.jsonl.gz']) {
    const missing = rowlog(['.', path.join(dir, name)]);
    t.equal(missing.status, 2, 'as jq: an input that cannot be opened');
    t.match(missing.stderr, /^rowlog: query: ENOENT/);
  }
  const long = path.join(dir, 'long.jsonl');
  fs.writeFileSync(long, `{"s":"${'y'.repeat(300_000)}"}`);
  t.equal(rowlog(['.s | length', long]).stdout, '300000\n', 'a line longer than a read chunk');
  t.equal(rowlog(['-c', '--', '-.x', a]).stdout, '-1\n-2\n', '-- before a filter that starts with -');
});

t.test('flags: -n --arg --argjson -r -s; EPIPE on stdout exits 0 quietly', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'big.jsonl');
  fs.writeFileSync(file, jsonl(200_000));
  const n = rowlog(['-n', '-c', '--arg', 'who', 'me', '--argjson', 'k', '[1,2]', '{who: $who, k: $k}']);
  t.equal(n.stdout, '{"who":"me","k":[1,2]}\n');
  const rs = rowlog(['-rs', 'map(.name) | .[0:2] | join(",")', file]);
  t.equal(rs.stdout, 'r0,r1\n');
  const pipe = run('bash', ['-c', `set -o pipefail; "${process.execPath}" "${MAIN}" query -c . "${file}" | head -n 1`]);
  t.equal(pipe.status, 0, pipe.stderr);
  t.equal(pipe.stderr, '');
  t.equal(pipe.stdout, '{"step":0,"loss":1,"name":"r0"}\n');
});

t.test('gzip is told by its bytes, not its name: a .gz of plain text, gzip without .gz, gzip on stdin', async (t) => {
  const dir = tmpdir(t);
  const text = jsonl(3);
  const plainNamedGz = path.join(dir, 'plain.jsonl.gz');
  fs.writeFileSync(plainNamedGz, text);
  const gzNamedPlain = path.join(dir, 'packed.jsonl');
  fs.writeFileSync(gzNamedPlain, zlib.gzipSync(text));
  const want = '0\n1\n2\n';
  t.equal(rowlog(['-c', '.step', plainNamedGz]).stdout, want, 'plain text named .gz');
  t.equal(rowlog(['-c', '.step', gzNamedPlain]).stdout, want, 'gzip not named .gz');
  const stdin = run('bash', ['-c', `cat "${gzNamedPlain}" | "${process.execPath}" "${MAIN}" query -c .step -`]);
  t.equal(stdin.stdout, want, 'gzip on stdin');
  t.equal(rowlog(['-c', '.step', path.join(dir, 'empty.jsonl')], undefined).status, 2, 'a missing file still fails');
  fs.writeFileSync(path.join(dir, 'empty.jsonl'), '');
  t.equal(rowlog(['-c', '.step', path.join(dir, 'empty.jsonl')]).stdout, '', 'an empty file gives nothing');
});

t.test('--strict on a file large enough for worker threads: exit 2 with jq\'s line, no crash (review of issue 11)', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'big.jsonl');
  // Over 8 MB, so the workers start at once and the bad line's error comes while the file is fed.
  fs.writeFileSync(file, jsonl(200_000, { 1: 'not json' }));
  t.ok(fs.statSync(file).size > 8 * 1024 * 1024);
  const r = rowlog(['--strict', '-c', '.step', file]);
  t.equal(r.status, 2, 'as jq stops at a parse error');
  t.equal(r.stderr, `jq: error (at ${file}:1): not valid JSON (--strict)\n`, 'one line, no unhandled rejection');
  t.equal(r.stdout, '');
});

t.test('a live pipe: each result comes while the writer is still open, as jq; halt exits without waiting for EOF', { timeout: 20_000 }, async (t) => {
  const child = spawnCli(['query', '-c', '.a']);
  t.teardown(() => child.kill());
  let out = '';
  const got = (want: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (out.includes(want)) resolve();
      };
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        check();
      });
      check();
    });
  child.stdin.write('{"a":1}\n');
  await got('1\n'); // before: only at EOF (or 10,000 lines later); the test's own timeout fails it
  t.equal(out, '1\n', 'the first result while stdin stays open');
  child.stdin.write('{"a":2}\n');
  await got('2\n');
  child.stdin.end();
  const [code] = (await once(child, 'exit')) as [number];
  t.equal(code, 0);

  const halting = spawnCli(['query', '-c', '.a, halt']);
  t.teardown(() => halting.kill());
  halting.stdin.write('{"a":1}\n{"a":2}\n');
  const [hcode] = (await once(halting, 'exit')) as [number]; // stdin is never closed
  t.equal(hcode, 0, 'halt ends the run with stdin still open, as jq 1.7');
});
