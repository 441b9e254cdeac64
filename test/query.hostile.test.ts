/**
 * `rowlog query` and `query()` on hostile input (rowlog issue 11): deep values, faults inside
 * jq-web, lines past maxLineBytes, /dev/zero, a 40 MB line, files where no line is JSON, JSON
 * texts over many lines, line numbers past a chunk, and the progress line on a terminal.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CLI, runCli } from './cli.js';
import { run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { jqReady, query, type QueryOptions } from '../lib/read/query.js';

async function collect(filter: string, text: string, opts: QueryOptions = {}) {
  const q = query(filter, opts);
  const out: string[] = [];
  q.on('data', (d: Buffer) => out.push(d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    q.on('end', resolve);
    q.on('error', reject);
  });
  q.end(text);
  await done;
  return { out: out.join(''), badLines: [...q.badLines] };
}

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

t.test('values nested 200 deep work in every mode, also beside a bad line; 257 deep fails as jq', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'deep.jsonl');
  fs.writeFileSync(file, `${deep(200)}\n{"a":1}\n${deep(256)}\n`);
  t.equal(runCli(['query', '-c', '[paths] | length', file]).stdout, '199\n1\n255\n', 'streaming (fast path)');
  t.equal(runCli(['query', '-c', '-s', 'map([paths] | length)', file]).stdout, '[199,1,255]\n', 'slurp');
  t.equal(runCli(['query', '-c', '-n', '[inputs | [paths] | length]', file]).stdout, '[199,1,255]\n', '-n inputs');
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, `${deep(200)}\nnot json\n${deep(200)}\n`);
  const r = runCli(['query', '-c', '[paths] | length', bad]);
  t.same([r.stdout, r.stderr, r.status], ['199\n199\n', '1 bad line skipped (line 2)\n', 0], 'the -R fallback with fromjson');
  if (needs(t, 'jq', 'the same as jq')) t.equal(runCli(['query', '-c', '[paths] | length', file]).stdout, run(peer('jq') as string, ['-c', '[paths] | length', file]).stdout);
});

t.test('a fault inside jq-web fails only that query with ERR_JQ; the next query() works', async (t) => {
  await jqReady();
  await t.rejects(collect('reduce range(200000) as $i (null; [.]) | tojson', 'null\n'), { code: 'ERR_JQ', message: /jq-web failed/ });
  t.equal((await collect('.a', '{"a":1}\n')).out, '1\n', 'the next query, in the same process');
  t.equal((await collect('[paths] | length', `${deep(200)}\n`)).out, '199\n', 'and a deep value after it');
  await t.rejects(collect('reduce range(200000) as $i (null; [.]) | tojson', 'null\n', { workers: 1 }), { code: 'ERR_JQ' }, 'on a worker thread too');
  t.equal((await collect('.a', '{"a":2}\n', { workers: 1 })).out, '2\n');
  const dir = tmpdir(t);
  const file = path.join(dir, 'one.jsonl');
  fs.writeFileSync(file, 'null\n');
  const cli = runCli(['query', 'reduce range(200000) as $i (null; [.]) | tojson', file]);
  t.equal(cli.status, 1, 'the command: exit 1');
  t.match(cli.stderr, /^rowlog: query: jq-web failed \(too deep a value or recursion for its stack\)/m);
});

t.test('maxLineBytes: a longer line is skipped as it comes and counted with its number; ERR_BAD_LINE under strict', async (t) => {
  const long = `{"s":"${'x'.repeat(5000)}"}`;
  for (const slurp of [false, true]) {
    const r = await collect(slurp ? 'map(.a)' : '.a', `{"a":1}\n${long}\n{"a":2}\n${long}`, { maxLineBytes: 1000, slurp });
    t.equal(r.out, slurp ? '[1,2]\n' : '1\n2\n', `slurp: ${slurp}`);
    t.same(r.badLines, [2, 4]);
  }
  const pieces = await (async () => {
    const q = query('.a', { maxLineBytes: 1000 });
    const out: string[] = [];
    q.on('data', (d: Buffer) => out.push(d.toString()));
    const done = new Promise((resolve) => q.on('end', resolve));
    q.write('{"a":1}\n{"s":"');
    for (let i = 0; i < 100; i++) q.write('y'.repeat(100));
    q.end('"}\n{"a":3}\n');
    await done;
    return { out: out.join(''), bad: q.badLines };
  })();
  t.same(pieces, { out: '1\n3\n', bad: [2] }, 'a long line written in pieces');
  await t.rejects(collect('.a', `{"a":1}\n${long}\n`, { maxLineBytes: 1000, strict: true }), { code: 'ERR_BAD_LINE', message: /^line 2: longer than maxLineBytes/ });
  t.throws(() => query('.', { maxLineBytes: 0 }), { code: 'ERR_INVALID_OPTION', message: /^maxLineBytes:/ });
});

t.test('a 1 GB file of NUL bytes (as /dev/zero): one bad line, exit 0, peak RSS under 600 MB', async (t) => {
  const dir = tmpdir(t);
  const zero = path.join(dir, 'zero.bin');
  fs.writeFileSync(zero, '');
  fs.truncateSync(zero, 1 << 30); // sparse: reads as zeros
  const wrapper = `
    const [cli, ...rest] = process.argv.slice(1);
    process.argv = [process.argv[0], cli, ...rest];
    process.on('exit', () => {
      const m = /^VmHWM:\\s*(\\d+) kB/m.exec(require('fs').readFileSync('/proc/self/status', 'utf8'));
      require('fs').writeSync(2, 'VmHWM ' + (m ? m[1] : 'NaN') + '\\n');
    });
    import(require('url').pathToFileURL(cli).href);`;
  const r = spawnSync(process.execPath, ['-e', wrapper, CLI, 'query', '.', zero], { encoding: 'utf8', timeout: 300_000 });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '');
  const kb = Number(/VmHWM (\d+)/.exec(r.stderr)?.[1]);
  t.match(r.stderr, /^1 bad line skipped \(line 1\): no line of the input was JSON\n/);
  t.ok(kb / 1024 < 600, `peak RSS ${Math.round(kb / 1024)} MB`);
});

t.test('lines of 10 and 40 MB complete (the bench has the linearity figure); --with-file too', async (t) => {
  const dir = tmpdir(t);
  for (const mb of [10, 40]) {
    const file = path.join(dir, `long${mb}.jsonl`);
    fs.writeFileSync(file, `{"s":"${'y'.repeat(mb * 1e6)}"}\n{"a":1}\n`);
    const r = runCli(['query', '-c', '.s | length', file]);
    t.same([r.stdout, r.status], [`${mb * 1e6}\n0\n`, 0], `${mb} MB`);
    const w = runCli(['query', '-c', '--with-file', '[(.s | length), ."$file"]', file]);
    t.equal(w.stdout, `[${mb * 1e6},${JSON.stringify(file)}]\n[0,${JSON.stringify(file)}]\n`, `${mb} MB with --with-file`);
  }
});

t.test('a file where no line is JSON exits 0 with one note', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'hostname');
  fs.writeFileSync(file, 'myhost\n');
  const r = runCli(['query', '.', file]);
  t.same([r.stdout, r.stderr, r.status], ['', '1 bad line skipped (line 1): no line of the input was JSON\n', 0]);
});

t.test('JSON texts over lines: pretty-printed and concatenated, in chunks; a bad one fails as jq (exit 2)', async (t) => {
  const values = Array.from({ length: 3000 }, (_, i) => ({ i, tags: [i, `t${i}`], nested: { deep: { v: i % 7 } } }));
  const text = values.map((v, i) => (i % 3 === 2 ? JSON.stringify(v) : JSON.stringify(v, null, 2))).join('\n') + '\n';
  const want = values.map((v) => `${v.i}\n`).join('');
  t.equal((await collect('.i', text, { chunkChars: 4096 })).out, want, 'small chunks cut between values');
  t.equal((await collect('[.[].i] | add', text, { slurp: true })).out, `${(2999 * 3000) / 2}\n`);
  t.equal((await collect('.a', '{"a":1}{"a":2} {"a":3}\n')).out, '1\n2\n3\n', 'back to back');
  const dir = tmpdir(t);
  const file = path.join(dir, 'bad.json');
  fs.writeFileSync(file, '{\n  "a": 1\n}\n{\n  "a": oops\n}\n');
  const r = runCli(['query', '.a', file]);
  t.equal(r.status, 2);
  t.match(r.stderr, /^jq: parse error: .* at line 6, column/);
  if (needs(t, 'jq', 'the line jq names')) t.match(run(peer('jq') as string, ['.a', file]).stderr, /at line 6, column/);
});

t.test('input_line_number counts over the whole file (past a chunk), as jq', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'lines.jsonl');
  fs.writeFileSync(file, Array.from({ length: 25_000 }, (_, i) => `{"i":${i}}`).join('\n') + '\n');
  const r = runCli(['query', '-c', 'select(.i % 5000 == 4999) | input_line_number', file]);
  t.equal(r.stdout, '5000\n10000\n15000\n20000\n25000\n');
  if (needs(t, 'jq', 'the same as jq')) t.equal(r.stdout, run(peer('jq') as string, ['-c', 'select(.i % 5000 == 4999) | input_line_number', file]).stdout);
});

t.test('on a terminal the progress line is cleared before a result reaches it', async (t) => {
  if (!needs(t, 'script', 'a terminal for stdout and stderr (script)')) return;
  const dir = tmpdir(t);
  const file = path.join(dir, 'big.jsonl');
  const row = `{"i":0,"pad":"${'p'.repeat(200)}"}\n`;
  fs.writeFileSync(file, row.repeat(Math.ceil((60 * 1024 * 1024) / row.length)) + '{"i":"last"}\n');
  const r = run(peer('script') as string, ['-qec', `'${process.execPath}' '${CLI}' query -M 'select(.i == "last") | .i' '${file}'`, '/dev/null']);
  t.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  t.ok(out.includes('"last"'), 'the result');
  const before = out.slice(0, out.indexOf('"last"'));
  // Either the progress line never showed, or it was cleared (\r ESC[K) after its last update.
  const lastProgress = before.lastIndexOf('MB');
  t.ok(lastProgress === -1 || before.slice(lastProgress).includes('\r\x1b[K'), `cleared before the result: ${JSON.stringify(before.slice(-60))}`);
});

t.test('a damaged middle member of a blocked gzip: the other members read, one warning, exit 1 unless --allow-damage', async (t) => {
  const { BGZF_EOF, bgzfMemberSync } = await import('../lib/format/bgzf.js');
  const dir = tmpdir(t);
  const file = path.join(dir, 'damaged.jsonl.gz');
  const members = [0, 1, 2].map((m) =>
    bgzfMemberSync(Buffer.from(Array.from({ length: 1000 }, (_, i) => `{"step":${m * 1000 + i}}\n`).join('')), 1),
  );
  const second = members[0]?.length as number;
  (members[1] as Buffer)[0] = 0; // the magic byte of the middle member
  fs.writeFileSync(file, Buffer.concat([...members, BGZF_EOF]));
  const r = runCli(['query', '-c', '.step', file]);
  const steps = r.stdout.trim().split('\n').map(Number);
  t.same([steps.length, steps[0], steps[999], steps[1000], steps.at(-1)], [2000, 0, 999, 2000, 2999], 'the first and last members');
  t.match(r.stderr, new RegExp(`^rowlog: query: ${file.replace(/[.]/g, '\\.')}: damaged gzip member at byte ${second} skipped \\((1000 rows lost|rows lost unknown)\\)\\n$`));
  t.equal(r.status, 1);
  const allowed = runCli(['query', '-c', '--allow-damage', '.step', file]);
  t.equal(allowed.stdout, r.stdout);
  t.equal(allowed.status, 0, '--allow-damage');
});

t.test('a whole-input run whose heap would reach the wasm stack is a clear ERR_JQ, never a silent or garbled result', async (t) => {
  // `{}` rows take ~140 bytes of jq heap per input byte (measured, see query-worker.ts): 14.6 MiB
  // of them bring the heap to within 12 MiB of the stack at the top of the 2 GB memory, 15 MiB
  // into it (jq then aborted on a corrupted value). Both are under maxInputBytes (250 MiB).
  for (const mib of [14.6, 15]) {
    const text = '{}\n'.repeat(Math.floor((mib * 1048576) / 3));
    const err = await collect('length', text, { slurp: true }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    t.equal(err?.code, 'ERR_JQ', `${mib} MiB of {} rows`);
    t.match(err?.message, /heap.*stack|memory/, 'says jq-web ran out of memory');
  }
  t.same(await collect('length', '[1,2]\n', { slurp: true }), { out: '1\n', badLines: [] }, 'the next query works');
});
