/**
 * Crash tolerance of tensorboardSink (docs/DESIGN.md §4): a writer SIGKILLed right after a random one of its
 * first flushes, while it logs and writes the next rows,
 * leaves an events file whose records are whole with valid CRCs, but for at most a torn last one
 * (a kill inside a write), holding exactly a prefix of the rows and every row flushed before the
 * kill; read by the test's walker and, when installed, by Python's protobuf and crc32c. Reopening
 * the run writes a second events file and leaves the first untouched.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startChild } from './child.js';
import { ROOT, run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { eventsFiles, readTfFile, readTfFilePython } from './tfevents.js';
import type { TfFile } from './tfevents.js';

const fixture = path.join(ROOT, 'test', 'fixtures', 'tensorboard-writer.mjs');
const KILLS = 8;

/**
 * Runs the writer until it has printed its `flushes`-th completed flush (`flushed <5000 × flushes>`)
 * and kills it then, while it logs and writes the next rows; returns the last `flushed N` it printed.
 */
async function killAfter(dir: string, flushes: number): Promise<number> {
  const child = startChild(fixture, [dir]);
  await child.line(new RegExp(`^flushed ${5000 * flushes}$`));
  child.proc.kill('SIGKILL');
  const { signal } = await child.exited;
  if (signal !== 'SIGKILL') throw new Error(`writer ended by itself (${String(signal)}): ${child.stderr()}`);
  return Math.max(...child.lines.map((l) => Number(/^flushed (\d+)$/.exec(l)?.[1] ?? -1)));
}

/** The rows a file holds are exactly 0..n-1 after its file_version event; returns n, or -1. */
function prefixRows(f: TfFile): number {
  const [first, ...rows] = f.events;
  if (first?.fileVersion !== 'brain.Event:2') return -1;
  const ok = rows.every((e, i) => e.step === i && e.values?.['t/i'] === i && e.values['t/ok'] === (i % 2 === 0 ? 1 : 0) && e.values['t/v'] === Math.fround(Math.sin(i)) && e.wallTime === i / 1000);
  return ok ? rows.length : -1;
}

t.test(`SIGKILL at ${KILLS} random moments: whole records with valid CRCs, a prefix of the rows, nothing flushed lost`, async (t) => {
  const python = needs(t, ['protobuf', 'protoc', 'crc32c'], 'the Python reader after each kill');
  const root = tmpdir(t);
  let torn = 0;
  for (let k = 0; k < KILLS; k++) {
    const dir = path.join(root, `run${k}`);
    const flushes = 1 + Math.floor(Math.random() * 4);
    const flushed = await killAfter(dir, flushes);
    const files = eventsFiles(dir);
    t.equal(files.length, 1, `kill ${k}: one events file`);
    const file = files[0] as string;
    const js = readTfFile(file); // throws on a bad CRC
    const rows = prefixRows(js);
    if (js.torn > 0) {
      torn++;
      t.comment(`kill ${k} after flush ${flushes} landed inside a write: ${js.torn} bytes of a torn last record`);
    }
    t.ok(rows >= flushed && rows >= 0, `kill ${k} after flush ${flushes}: rows 0..${rows - 1} (last flush ${flushed}), every CRC valid`);
    if (python) {
      const py = readTfFilePython(peer('protobuf') as string, peer('protoc') as string, file);
      t.equal(py.events.length, js.events.length, `kill ${k}: Python reads the same ${py.events.length} events`);
      t.equal(py.torn, js.torn, 'and the same torn end');
      t.equal(prefixRows(py), rows, 'the same rows');
    }
    if (k % 2 === 0) {
      const before = fs.readFileSync(file);
      const append = run(process.execPath, [fixture, dir, 'append-one']);
      t.equal(append.status, 0, append.stderr);
      const after = eventsFiles(dir);
      t.equal(after.length, 2, 'reopening writes a second events file');
      t.same(fs.readFileSync(file), before, 'the first is untouched');
      const second = readTfFile(after.find((f) => f !== file) as string);
      t.match(second, { torn: 0, events: [{ fileVersion: 'brain.Event:2' }, { step: -1, values: { 't/appended': 1 } }] }, 'the second: file_version, then the new row');
    }
  }
  t.comment(`${torn} of ${KILLS} kills left a torn last record (a kill inside a write; each was read up to it)`);
});

t.test('a file cut anywhere: every whole record read, the cut one reported torn', async (t) => {
  const dir = tmpdir(t);
  const r = run(process.execPath, [fixture, dir, 'append-one']);
  t.equal(r.status, 0, r.stderr);
  const file = eventsFiles(dir)[0] as string;
  const bytes = fs.readFileSync(file);
  const firstLen = Number(bytes.readBigUInt64LE(0)) + 16;
  const python = needs(t, ['protobuf', 'protoc', 'crc32c'], 'the Python reader on cut files');
  for (const cut of [firstLen + 1, firstLen + 8, firstLen + 12, firstLen + 20, bytes.length - 1]) {
    const part = path.join(dir, `cut-${cut}`);
    fs.writeFileSync(part, bytes.subarray(0, cut));
    const whole = (f: TfFile) => ({ torn: f.torn, events: f.events.map((e) => e.fileVersion ?? e.step) });
    const want = { torn: cut - firstLen, events: ['brain.Event:2'] };
    t.same(whole(readTfFile(part)), want, `cut at ${cut} of ${bytes.length}: the first record, then ${cut - firstLen} torn bytes`);
    if (python) t.same(whole(readTfFilePython(peer('protobuf') as string, peer('protoc') as string, part)), want, 'Python agrees');
  }
});
