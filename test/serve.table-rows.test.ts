/**
 * serve's fast reader of rowlog's own JSONL (lib/serve/table-rows.ts) gives the rows readLog
 * gives, on real files: a run's `.jsonl.gz` written by createLogger (many batches, NaN and
 * ±Infinity), hand-made BGZF with a line across members, CRLF, blank, bad and non-object lines
 * and no last newline, a torn last member (a writer at work), plain `.jsonl`; and gives up
 * (readTableIndex then reads with readLog: the same figures) on damage, a plain gzip, and bytes
 * that are not a member. Abort and pause between batches.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { createLogger } from '../lib/index.js';
import { BGZF_EOF, bgzfMemberSync } from '../lib/format/bgzf.js';
import { readLog } from '../lib/read/read-log.js';
import { readFigures } from '../lib/serve/summary.js';
import { readTableIndex } from '../lib/serve/table-index.js';
import { BATCH_BYTES, fastRows } from '../lib/serve/table-rows.js';
import { tmpdir } from './helpers.js';

/** Rows as comparable text (NaN and ±Infinity by name). */
const text = (rows: Array<Record<string, unknown>>): string[] => rows.map((r) => JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));

async function viaReadLog(file: string): Promise<string[]> {
  const rows: Array<Record<string, unknown>> = [];
  for await (const r of readLog(file)) rows.push(r);
  return text(rows);
}

async function viaFast(file: string): Promise<{ result: string; rows: string[] }> {
  const rows: Array<Record<string, unknown>> = [];
  const result = await fastRows(file, (r) => rows.push(r));
  return { result, rows: text(rows) };
}

/** A BGZF file of these members' texts, the end marker last unless `eof` is false. */
function bgzf(file: string, texts: string[], eof = true): string {
  fs.writeFileSync(file, Buffer.concat([...texts.map((s) => bgzfMemberSync(Buffer.from(s), 1)), ...(eof ? [BGZF_EOF] : [])]));
  return file;
}

t.test("a run's .jsonl.gz written by createLogger: readLog's rows, batch after batch", async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, tensorboard: false, exitHooks: false });
  const n = 40_000;
  for (let i = 0; i < n; i++) log.row('train', { loss: i === 7 ? NaN : i === 8 ? Infinity : i === 9 ? -Infinity : Math.sin(i) * 1e3, h: (i * 2654435761) % 1e9, tag: `r${i}` });
  await log.close();
  const file = path.join(dir, 'train.jsonl.gz');
  t.ok(fs.statSync(file).size > 2 * BATCH_BYTES, 'more than two batches');
  const fast = await viaFast(file);
  t.equal(fast.result, 'done');
  t.equal(fast.rows.length, n);
  t.same(fast.rows, await viaReadLog(file), 'the same rows as readLog');
  const ix = await readTableIndex(file, '$step');
  t.equal(ix.total, n);
  t.same(ix.stats.toJSON().loss?.nonFinite, 3, 'NaN, Infinity and -Infinity counted');
});

t.test('hand-made BGZF: a line across members, CRLF, blank, bad and non-object lines, no last newline; a torn end', async (t) => {
  const dir = tmpdir(t);
  const long = 'x'.repeat(60_000);
  // a line across three members (its middle member holds no newline), then a line ending in the next
  const texts = ['{"a":1}\n{"a":2}\r\n\n', 'not json\n[1,2]\n{"s":"', long, `${long}","a":3}\n{"a":NaN}\n`, '{"a":4}'];
  const whole = bgzf(path.join(dir, 'whole.jsonl.gz'), texts);
  const expect = await viaReadLog(whole);
  t.equal(expect.length, 5, 'readLog: five rows');
  t.same(await viaFast(whole), { result: 'done', rows: expect });
  // torn: the last member cut short (a writer at work), and a file without the end marker
  const full = fs.readFileSync(whole);
  const torn = path.join(dir, 'torn.jsonl.gz');
  fs.writeFileSync(torn, full.subarray(0, full.length - BGZF_EOF.length - 10));
  t.same(await viaFast(torn), { result: 'done', rows: await viaReadLog(torn) }, 'torn: the rows of the whole members, the open line dropped');
  const noEof = bgzf(path.join(dir, 'noeof.jsonl.gz'), texts, false);
  t.same(await viaFast(noEof), { result: 'done', rows: expect });
  const empty = path.join(dir, 'empty.jsonl.gz');
  fs.writeFileSync(empty, '');
  t.same(await viaFast(empty), { result: 'done', rows: [] });
});

t.test('plain .jsonl: lines across batches, no last newline', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 't.jsonl');
  let s = '';
  for (let i = 0; s.length < 3 * BATCH_BYTES; i++) s += `{"$step":${i},"v":${i * 0.5},"pad":"${'p'.repeat(i % 97)}"}\n`;
  fs.writeFileSync(file, `${s}{"long":"${'L'.repeat(2 * BATCH_BYTES)}"}\n{"last":true}`); // a line longer than a batch
  const fast = await viaFast(file);
  t.equal(fast.result, 'done');
  t.same(fast.rows, await viaReadLog(file));
  t.match(fast.rows[fast.rows.length - 1], /"last":true/);
});

t.test('gives up on damage, a plain gzip and bytes that are not a member; readTableIndex then reads with readLog', async (t) => {
  const dir = tmpdir(t);
  let body = '';
  for (let i = 0; i < 5000; i++) body += `{"$step":${i},"v":${(i * 7919) % 1000}}\n`;
  const parts = [body.slice(0, 20_000), body.slice(20_000, 40_000), body.slice(40_000, 100_000)]; // cut inside lines
  const good = bgzf(path.join(dir, 'good.jsonl.gz'), parts);
  const bytes = fs.readFileSync(good);
  const damaged = path.join(dir, 'damaged.jsonl.gz');
  const d = Buffer.from(bytes);
  const second = bgzfMemberSync(Buffer.from(parts[0] as string), 1).length;
  d[second + 40] = (d[second + 40] as number) ^ 0xff; // inside the second member's deflate data
  fs.writeFileSync(damaged, d);
  const gz = path.join(dir, 'plain.jsonl.gz');
  fs.writeFileSync(gz, zlib.gzipSync(body));
  const junk = path.join(dir, 'junk.jsonl.gz');
  fs.writeFileSync(junk, Buffer.concat([bytes.subarray(0, second), Buffer.from('this is not gzip at all, not a member either'), bytes.subarray(second)]));
  let paused = 0;
  for (const [name, file] of [
    ['damaged', damaged],
    ['plain gzip', gz],
    ['not a member', junk],
  ] as const) {
    t.equal((await viaFast(file)).result, 'other', `${name}: left to readLog`);
    const ix = await readTableIndex(file, '$step', { pause: () => (paused++, Promise.resolve()) });
    t.equal(ix.total, (await viaReadLog(file)).length, `${name}: readTableIndex has readLog's rows`);
    t.equal((await readFigures(file)).rows, ix.total, `${name}: the runs table's figures too`);
  }
  t.ok(paused > 0, "readLog's read pauses too");
});

t.test('abort and pause between batches', async (t) => {
  const dir = tmpdir(t);
  let body = '';
  for (let i = 0; body.length < 4 * BATCH_BYTES; i++) body += `{"$step":${i},"v":${(i * 7919) % 100003},"w":${(i * 104729) % 100019}}\n`;
  const members: string[] = [];
  for (let p = 0; p < body.length; p += 60_000) members.push(body.slice(p, p + 60_000));
  const file = bgzf(path.join(dir, 'p.jsonl.gz'), members);
  const plain = path.join(dir, 'p.jsonl');
  fs.writeFileSync(plain, body);
  for (const f of [file, plain]) {
    let pauses = 0;
    const all: unknown[] = [];
    t.equal(await fastRows(f, (r) => all.push(r), { pause: () => (pauses++ % 2 === 0 ? Promise.resolve() : undefined) }), 'done');
    t.ok(pauses >= 2, `${path.basename(f)}: asked between batches (${pauses})`);
    const ac = new AbortController();
    const some: unknown[] = [];
    t.equal(await fastRows(f, (r) => some.push(r), { signal: ac.signal, pause: () => (ac.abort(), undefined) }), 'done');
    t.ok(some.length > 0 && some.length < all.length, `${path.basename(f)}: stopped after the first batch (${some.length} of ${all.length})`);
    const before = new AbortController();
    before.abort();
    const none: unknown[] = [];
    await fastRows(f, (r) => none.push(r), { signal: before.signal });
    t.ok(none.length < all.length, 'aborted before: stops at the first batch');
  }
});
