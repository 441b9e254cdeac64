/** Shared test helpers: temp dirs removed after each test, a sink that collects Entries, file readers. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import type { Test } from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { summarizeRow } from '../transforms/summarize.js';
import type { SummarizeRowOptions } from '../transforms/summarize.js';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A fresh temp dir, removed when `t` ends. */
export function tmpdir(t: Test, prefix = 'rowlog-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An object-mode Writable that keeps every Entry written to it. */
export function collector(): Writable & { entries: Entry<FlatRow>[] } {
  const entries: Entry<FlatRow>[] = [];
  const w = new Writable({
    objectMode: true,
    write(entry: Entry<FlatRow>, _enc, cb) {
      entries.push(entry);
      cb();
    },
  });
  return Object.assign(w, { entries });
}

/** The parsed lines of a JSONL file, `.gz` or not (JSON.parse: for files without NaN/Infinity tokens). */
export function readJsonl(file: string): Array<Record<string, unknown>> {
  const bytes = fs.readFileSync(file);
  return (file.endsWith('.gz') ? zlib.gunzipSync(bytes) : bytes)
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  uid?: number;
  /** Kill the command after this many ms (default 5 minutes: a ceiling for a loaded machine, not a pace). */
  timeout?: number;
}

/** Runs `cmd args` and returns {status, stdout, stderr}. */
export function run(cmd: string, args: string[], opts: RunOptions = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 30, ...opts });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A tmpfs of `size` at a fresh folder (root only); undefined (and a comment) when not allowed. */
export function tmpfs(t: Test, size: string): { base: string; mnt: string } | undefined {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-iso-'));
  const mnt = path.join(base, 'mnt');
  fs.mkdirSync(mnt);
  if (run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]).status !== 0) {
    t.comment('skipped: cannot mount a tmpfs here (needs root)');
    fs.rmSync(base, { recursive: true, force: true });
    return undefined;
  }
  t.teardown(() => {
    run('umount', [mnt]);
    fs.rmSync(base, { recursive: true, force: true });
  });
  return { base, mnt };
}

/** Fills the file system of `file` up: writes until ENOSPC. */
export function fillDisk(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const block = Buffer.alloc(4096, 1); ; ) fs.writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A tmpfs of `size` that is already full (root only): its `filler` file took every block, so the
 * next write under `mnt` fails with ENOSPC until `filler` is removed. Undefined (and a comment)
 * when mounts are not allowed, like {@link tmpfs}.
 */
export function fullTmpfs(t: Test, size = '64k'): { base: string; mnt: string; filler: string } | undefined {
  const fsx = tmpfs(t, size);
  if (fsx === undefined) return undefined;
  const filler = path.join(fsx.mnt, 'filler');
  fillDisk(filler);
  return { ...fsx, filler };
}

/** A warning `summarizeRow` reported through `onWarning`. */
export interface SeenWarning {
  code: string;
  key: string;
  message: string;
}

/** `summarizeRow(data, opts)` and every warning it reported, in order. */
export function flat(data: unknown, opts: SummarizeRowOptions = {}): { row: FlatRow; warnings: SeenWarning[] } {
  const warnings: SeenWarning[] = [];
  const row = summarizeRow(data, { ...opts, onWarning: (code, message, key) => warnings.push({ code, message, key }) });
  return { row, warnings };
}
