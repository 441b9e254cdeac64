/**
 * The CSV sink out of file descriptors (issue 9 point 2, with point 4's rewrite): under a low fd
 * limit, new keys (the sidecar `<t>.csv.columns`, the union rewrite's files) must not fail the
 * sink. Before the fix the sidecar's temp file hit EMFILE inside `log.row()`, the sink failed,
 * and every CSV lost the rows queued or logged after that moment (the chaos test's emfile fault).
 * Now every fd the CSV machinery opens parks an idle file of the sink's pool on EMFILE, and what
 * still cannot get one waits: a sidecar write before the rows that need it, a rewrite postponed.
 */
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { ROOT, run, tmpdir } from './helpers.js';
import { needs } from './peers.js';

const TABLES = 120;
const TICKS = 30;

/** Runs the fixture under `nofile`; returns its report and python's reading of every file in `dir`. */
function runChild(t: Test, dir: string, hog: number) {
  const r = run(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'csv-emfile.mjs'), dir, String(TABLES), String(TICKS), String(hog)], { cwd: ROOT, env: { ...process.env, ROWLOG_TEST_NOFILE: '48' } });
  t.equal(r.status, 0, `the child ran to its end (${r.stderr.slice(0, 500)})`);
  const out = JSON.parse(r.stdout || '{}') as { warnings?: string[]; error?: string; limit?: string };
  t.equal(out.limit, '48', 'the child ran under the low limit');
  t.equal(out.error, undefined, 'the sink did not fail');
  const script = `
import csv, json, os, sys
d = sys.argv[1]
out = {}
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name), newline='') as f:
        out[name] = list(csv.reader(f))
print(json.dumps(out))
`;
  const py = run('python3', ['-c', script, dir]);
  t.equal(py.status, 0, `python's csv reads the folder (${py.stderr.slice(0, 300)})`);
  return { warnings: out.warnings ?? [], files: JSON.parse(py.stdout || '{}') as Record<string, string[][]> };
}

/** Every table's rows, once, in order, with their new keys under the union header. */
function checkRows(t: Test, files: Record<string, string[][]>): void {
  const problems: string[] = [];
  for (let k = 0; k < TABLES; k++) {
    const name = `t${String(k).padStart(3, '0')}.csv`;
    const [header, ...rows] = files[name] ?? [];
    if (header === undefined) {
      problems.push(`${name}: missing`);
      continue;
    }
    if (header.join(',') !== '$step,$time,$level,a,b,i,t') problems.push(`${name}: header ${header.join(',')}`);
    const got = rows.map((r) => {
      const o = Object.fromEntries(header.map((h, j) => [h, r[j]]));
      return `${o.i}|${o.t}|${o.a ?? '?'}|${o.b ?? '?'}|${r.length}`;
    });
    const want = Array.from({ length: TICKS }, (_, i) => `${i}|${k}|${i >= 3 + (k % 5) ? i * 10 : ''}|${i >= 12 + (k % 7) ? `b${i}` : ''}|7`);
    if (got.join('\n') !== want.join('\n')) {
      const first = want.findIndex((w, j) => got[j] !== w);
      problems.push(`${name}: ${got.length} rows of ${TICKS}, first difference at row ${first}: ${got[first]} (want ${want[first]})`);
    }
  }
  t.same(problems.slice(0, 10), [], `every table holds its ${TICKS} rows once, in order, with their new keys`);
  t.same(Object.keys(files).filter((f) => !f.endsWith('.csv')), [], 'no sidecar or temp file is left');
}

t.test('new CSV keys under EMFILE: every row of every table, every key named in the header', async (t) => {
  if (!needs(t, 'prlimit')) return;
  const dir = tmpdir(t);
  // node holds ~20 fds of its own: 48 leaves the pool about 25, well under its maxOpenFiles of 64.
  const { warnings, files } = runChild(t, dir, 0);
  t.same(
    warnings.filter((w) => !w.startsWith('W_NEW_KEYS')),
    [],
    'no warning but the new keys (no W_SINK_ERROR, W_ROWS_DROPPED, W_REWRITE_FAILED): EMFILE parks an idle file',
  );
  checkRows(t, files);
});

t.test('another sink holds every fd for a while: the CSV rows, sidecars and rewrites wait, then all land', async (t) => {
  if (!needs(t, 'prlimit')) return;
  const dir = tmpdir(t);
  const { warnings, files } = runChild(t, dir, 15);
  t.same(
    warnings.filter((w) => !/^W_NEW_KEYS|^W_FILE_ERROR .*EMFILE/.test(w)),
    [],
    'no warning but the new keys and W_FILE_ERROR (EMFILE: rows kept and retried); nothing dropped, no rewrite failed',
  );
  checkRows(t, files);
});
