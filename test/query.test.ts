/** query(): jq over JSONL text as a Duplex — chunking, bad lines, runtime errors, whole-input modes, workers. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { isRowlogError } from '../lib/core/errors.js';
import { jqReady, query, type JqRuntimeError, type QueryOptions } from '../lib/read/query.js';
import { ROOT, tmpdir } from './helpers.js';

/** Runs `filter` over `text` written in pieces of `piece` characters; output text, bad lines and errors. */
async function runQuery(filter: string, text: string, opts: QueryOptions = {}, piece = 1 << 16) {
  const errors: JqRuntimeError[] = [];
  const q = query(filter, opts);
  q.on('jqerror', (e: JqRuntimeError) => errors.push(e));
  const out: string[] = [];
  q.on('data', (d: Buffer) => out.push(d.toString('utf8')));
  const done = new Promise<void>((resolve, reject) => {
    q.on('end', resolve);
    q.on('error', reject);
  });
  for (let i = 0; i < text.length; i += piece) q.write(text.slice(i, i + piece));
  q.end();
  await done;
  return { out: out.join(''), badLines: [...q.badLines], badLineCount: q.badLineCount, errors, errorCount: q.errorCount };
}

const rows = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ i, s: `r${i}`, v: i % 3 === 0 ? 'str' : i })).join('\n') + '\n';

t.test('results come out one per line, whatever the chunking of input and jq calls', async (t) => {
  const text = rows(50);
  const want = Array.from({ length: 50 }, (_, i) => (i % 5 === 0 ? `${i}\n` : '')).join('');
  for (const [piece, chunkLines] of [[1 << 16, 10_000], [1, 7], [13, 1], [100, 50]] as const) {
    const r = await runQuery('select(.i % 5 == 0) | .i', text, { chunkLines }, piece);
    t.equal(r.out, want, `pieces of ${piece}, ${chunkLines} lines per call`);
  }
  const noNewline = await runQuery('.i', '{"i":1}\n{"i":2}');
  t.equal(noNewline.out, '1\n2\n', 'a last line without newline still counts');
  t.equal((await runQuery('.', '')).out, '', 'no input, no output');
});

t.test('bad lines are skipped and counted with their line numbers; blank lines are not inputs', async (t) => {
  const seen: number[] = [];
  const text = '{"a":1}\n\nnot json\n{"a":2}\n   \n{"a":\n{"a":NaN}\n';
  const r = await runQuery('.a', text, { onBadLine: (n) => seen.push(n), chunkLines: 2 });
  t.equal(r.out, '1\n2\nnull\n', 'NaN is read as jq reads it');
  t.same(r.badLines, [3, 6]);
  t.equal(r.badLineCount, 2);
  t.same(seen, [3, 6]);
});

t.test('strict: a bad line fails the stream with ERR_BAD_LINE naming it, after the results before it', async (t) => {
  const q = query('.a', { strict: true });
  const out: string[] = [];
  q.on('data', (d: Buffer) => out.push(d.toString()));
  const failed = new Promise<unknown>((resolve) => q.on('error', resolve));
  q.end('{"a":1}\n{"a":2}\noops\n{"a":3}\n');
  const err = await failed;
  t.ok(isRowlogError(err));
  t.match(err, { code: 'ERR_BAD_LINE', message: /line 3/ });
  t.equal(out.join(''), '1\n2\n');
  await t.rejects(runQuery('.', '1\nx\n', { strict: true, slurp: true }), { code: 'ERR_BAD_LINE', message: /line 2/ }, 'whole-input mode too');
});

t.test('a bad filter throws at creation, ERR_JQ with jq\'s message', async (t) => {
  t.throws(() => query('.a |||'), { code: 'ERR_JQ', message: /syntax error, unexpected .*line 1:\n\.a \|\|\|\njq: 1 compile error$/ });
  t.throws(() => query('{'), { code: 'ERR_JQ', message: /syntax error.*line 1:\n\{\n/ }, 'jq\'s own line numbers');
  t.throws(() => query('$missing'), { code: 'ERR_JQ', message: /\$missing is not defined/ });
  t.throws(() => query('nosuchfn(1)'), { code: 'ERR_JQ', message: /nosuchfn\/1 is not defined/ });
  t.doesNotThrow(() => query('range(1e15)'), 'compiling does not run the filter');
  t.doesNotThrow(() => query('.a # a comment'), 'a trailing comment is harmless');
  t.doesNotThrow(() => query('def f: .+1; f'), 'defs in the filter');
});

t.test('a runtime error on one input is reported and the other inputs go on', async (t) => {
  const onError: JqRuntimeError[] = [];
  const r = await runQuery('.a + 1', '{"a":1}\n{"a":"x"}\n{"a":2}\n{"a":{"b":1}}\n', { onError: (e) => onError.push(e), chunkLines: 3 });
  t.equal(r.out, '2\n3\n');
  t.same(r.errors, [
    { line: 2, message: 'string ("x") and number (1) cannot be added' },
    { line: 4, message: 'object ({"b":1}) and number (1) cannot be added' },
  ]);
  t.same(onError, r.errors);
  t.equal(r.errorCount, 2);
  const partial = await runQuery('.a, error({why: .a})', '{"a":1}\n{"a":2}\n', { raw: true });
  t.equal(partial.out, '1\n2\n', 'results before the error are kept');
  t.same(partial.errors.map((e) => e.message), ['{"why":1} (not a string)', '{"why":2} (not a string)']);
});

t.test('slurp, nullInput and input/inputs read the whole input like the jq command', async (t) => {
  const text = '{"a":1}\nbad\n{"a":2}\n\n{"a":3}\n';
  const s = await runQuery('map(.a)', text, { slurp: true });
  t.equal(s.out, '[1,2,3]\n');
  t.same(s.badLines, [2]);
  t.equal((await runQuery('[inputs.a] | add', text, { nullInput: true })).out, '6\n');
  t.equal((await runQuery('[., input.a]', '1\n{"a":2}\n3\n{"a":4}\n')).out, '[1,2]\n[3,4]\n', 'input without -n');
  t.equal((await runQuery('$x + ($y | tostring)', '', { nullInput: true, args: { x: 'v' }, jsonArgs: { y: '[1]' } })).out, '"v[1]"\n');
  const err = await runQuery('.[] | .a + 1', '{"a":1}\n{"a":"x"}\n', { slurp: true });
  t.equal(err.out, '2\n');
  t.match(err.errors, [{ message: /cannot be added/ }]);
  await t.rejects(runQuery('.', rows(100), { slurp: true, maxInputBytes: 1000 }), { code: 'ERR_JQ', message: /too large for slurp/ });
});

t.test('raw and pretty output', async (t) => {
  t.equal((await runQuery('.s, .i', rows(2), { raw: true })).out, 'r0\n0\nr1\n1\n');
  t.equal((await runQuery('{i}', rows(1), { compact: false })).out, '{\n  "i": 0\n}\n');
  t.equal((await runQuery('"line\\nbreak"', '1\n', { raw: true })).out, 'line\nbreak\n', 'raw strings may hold newlines');
});

t.test('options are checked in the factory, naming the option', async (t) => {
  t.throws(() => query(1 as unknown as string), TypeError);
  t.throws(() => query('.', { slurp: 'yes' as unknown as boolean }), { name: 'TypeError', message: /^slurp:/ });
  t.throws(() => query('.', { workers: -1 }), { name: 'RangeError', message: /^workers:/ });
  t.throws(() => query('.', { chunkLines: 0 }), { name: 'RangeError', message: /^chunkLines:/ });
  t.throws(() => query('.', { args: { x: 1 as unknown as string } }), { name: 'TypeError', message: /^args\.x:/ });
  t.throws(() => query('.', { jsonArgs: { x: '{' } }), { name: 'RangeError', message: /^jsonArgs\.x:/ });
  t.throws(() => query('.', { onBadLine: 3 as unknown as () => void }), { name: 'TypeError', message: /^onBadLine:/ });
});

t.test('worker threads give byte-identical output, bad lines and errors, in input order', async (t) => {
  const lines = rows(50_000).split('\n');
  lines[123] = 'garbage';
  lines[40_000] = '{"i":';
  const text = lines.join('\n');
  const filter = 'select(.i % 3 != 1) | [.i, .s, (.v + 1)]';
  const inline = await runQuery(filter, text, { workers: 0, chunkLines: 1000 });
  const threaded = await runQuery(filter, text, { workers: 2, chunkLines: 1000 });
  const auto = await runQuery(filter, text, { chunkLines: 1000, autoWorkersAfterLines: 5000 });
  t.equal(inline.out.split('\n').length - 1, 16_666);
  t.equal(threaded.out, inline.out, 'workers: 2');
  t.equal(auto.out, inline.out, 'automatic workers');
  t.same(inline.badLines, [124, 40_001]);
  t.same(threaded.badLines, inline.badLines);
  t.same(threaded.errors, inline.errors);
  t.equal(inline.errors.length, 16_666);
});

t.test('chunkChars: chunks cut by size give the same output, bad lines and errors as the default', async (t) => {
  const text = rows(3000).replace('{"i":41,', 'oops {"i":41,');
  const base = await runQuery('.i + (.v | numbers)', text);
  const small = await runQuery('.i + (.v | numbers)', text, { chunkChars: 200, workers: 0 });
  t.same(small, base);
  t.throws(() => query('.', { chunkChars: 0 }), { code: 'ERR_INVALID_OPTION', message: /^chunkChars: / });
});

t.test('bad lines and runtime errors are taken out of the output under every output flag', async (t) => {
  const text = '{"a":1}\nbad\n{"a":"x"}\n{"a":2}\n';
  const cases: Array<[QueryOptions, string]> = [
    [{ jqFlags: ['-C'] }, '\x1b[0;39m2\x1b[0m\n\x1b[0;39m3\x1b[0m\n'],
    [{ jqFlags: ['-j'], raw: true }, '23'],
    [{ seq: true }, '\x1e2\n\x1e3\n'],
    [{ jqFlags: ['-a'], raw: true }, '2\n3\n'],
    [{ jqFlags: ['-S', '--tab'], compact: false }, '2\n3\n'],
    [{ jqFlags: ['--indent', '1'], compact: false, chunkLines: 1 }, '2\n3\n'],
  ];
  for (const [opts, want] of cases) {
    const r = await runQuery('.a + 1', text, opts);
    t.equal(r.out, want, JSON.stringify(opts));
    t.same([r.badLines, r.errors.map((e) => e.line)], [[2], [3]], `the bad line and the error: ${JSON.stringify(opts)}`);
  }
  t.throws(() => query('.', { jqFlags: ['--seq'] }), { code: 'ERR_INVALID_OPTION', message: /^jqFlags: --seq is not one of/ });
  t.throws(() => query('.', { jqFlags: ['--indent', '9'] }), { code: 'ERR_INVALID_OPTION', message: /^jqFlags: --indent/ });
});

t.test('halt and halt_error end the output; the rest of the input is not run', async (t) => {
  const q = query('if .a == 2 then ("stop" | halt_error(4)) else .a end', { chunkLines: 1 });
  const out: string[] = [];
  q.on('data', (d: Buffer) => out.push(d.toString()));
  await new Promise((resolve) => {
    q.on('end', resolve);
    q.end('{"a":1}\n{"a":2}\n{"a":3}\n');
  });
  t.equal(out.join(''), '1\n');
  t.same(q.halted, { code: 4, message: '"stop"' });
  t.equal(q.lastOutput, '1\n');
});

t.test('strict with worker threads: the bad line fails the stream; the chunks still in flight fail quietly (no unhandled rejection)', async (t) => {
  // In a child process: an unhandled rejection there fails it (stderr, exit 1), and the child
  // ends only once its worker threads have exited, so no wait stands in for theirs.
  const script = `
    import { query } from ${JSON.stringify(path.join(ROOT, 'dist/lib/read/query.js'))};
    const q = query('.a', { strict: true, workers: 2, chunkLines: 500 });
    q.resume();
    const failed = new Promise((resolve) => q.on('error', resolve));
    q.end('x\\n' + Array.from({ length: 20000 }, (_, i) => '{"a":' + i + '}').join('\\n') + '\\n');
    const err = await failed;
    process.on('exit', (code) => { if (code === 0) console.log(err.code, err.message.split(':')[0]); });`;
  // A file, not `--input-type=module -e`: worker threads inherit the flag and refuse their file.
  const file = path.join(tmpdir(t), 'strict.mjs');
  fs.writeFileSync(file, script);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
  t.equal(r.stderr, '', 'no unhandled rejection');
  t.equal(r.status, 0);
  t.equal(r.stdout, 'ERR_BAD_LINE line 1\n', 'the stream failed on line 1');
});

t.test('backpressure on the output: with no reader, the stream stops taking input once ~1 MiB of results wait (so a slow stdout holds memory)', async (t) => {
  await jqReady();
  const q = query('.', { workers: 0, chunkLines: 1000 });
  const rows = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(90) })).join('\n') + '\n';
  let fed = 0;
  const feeding = (async () => {
    for (let k = 0; k < 50; k++) {
      await new Promise<void>((resolve, reject) => q.write(rows, (err) => (err ? reject(err) : resolve())));
      fed++;
    }
    q.end();
  })();
  // Inline runs are synchronous and the rest is microtasks: by the next macrotask the feed has
  // either finished (no backpressure: all 5 MB of results buffered) or stopped for a reader.
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(q.readableLength <= 2 * 1048576, `results waiting: ${q.readableLength} bytes after ${fed} of 50 writes`);
  t.ok(fed < 50, 'the feed waits for a reader');
  const out: Buffer[] = [];
  q.on('data', (d: Buffer) => out.push(d));
  await Promise.all([feeding, new Promise((resolve) => q.on('end', resolve))]);
  t.equal(Buffer.concat(out).toString().split('\n').length - 1, 50_000, 'every result once the reader reads');
});
