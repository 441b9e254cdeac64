/**
 * web/runs-view.ts: the runs table's rules. A header's order (numbers numerically, text with
 * numeric collation, runs without a value last both ways), the filter (substrings, `key=value`,
 * comparisons on params and last values), and which data columns are shown.
 */
import t from 'tap';
import type { ColumnStats, RunSummary, SummaryBody } from '../lib/serve/protocol.js';
import { cellOf, cellText, compareCells, paramKey, parseList, runFilter, sortRuns, statColumnsOf, statKey } from '../web/runs-view.js';

const stats = (last: ColumnStats['last'], min: number | null, max: number | null): ColumnStats => ({ n: 1, nonFinite: 0, last, lastStep: 1, min, max });
const run = (id: string, params: RunSummary['params'], loss?: ColumnStats): RunSummary => ({ id, name: id, params, rows: 1, stats: loss ? { loss } : {}, pending: false });

const runs = [
  run('run-10', { lr: 0.1, 'optim/beta': 0.9, opt: 'adam' }, stats(0.5, 0.1, 2)),
  run('run-2', { lr: 0.01, 'optim/beta': 0.99, opt: 'sgd' }, stats('NaN', 0.2, 3)),
  run('run-1', { lr: 0.001, opt: 'Adam' }, stats(0.25, 0.25, 1)),
  run('bare', {}),
];
const ids = (rs: RunSummary[]) => rs.map((r) => r.id);

t.test('cells', async (t) => {
  const [a] = runs as [RunSummary];
  t.equal(cellOf(a, 'name'), 'run-10');
  t.equal(cellOf(a, paramKey('optim/beta')), 0.9);
  t.equal(cellOf(a, statKey('loss', 'max')), 2);
  t.equal(cellOf(a, statKey('acc', 'max')), undefined);
  t.equal(cellOf(a, 'other'), undefined);
  t.equal(cellOf(run('x', {}, stats(null, null, null)), statKey('loss', 'min')), undefined, 'a null figure is no value');
  t.equal(cellText(null), '');
  t.equal(cellText(false), 'false');
});

t.test('sorting: ascending, descending, missing last, numbers before text', async (t) => {
  t.same(ids(sortRuns(runs, paramKey('lr'), 1)), ['run-1', 'run-2', 'run-10', 'bare']);
  t.same(ids(sortRuns(runs, paramKey('lr'), -1)), ['run-10', 'run-2', 'run-1', 'bare'], 'bare (no lr) stays last');
  t.same(ids(sortRuns(runs, 'name', 1)), ['bare', 'run-1', 'run-2', 'run-10'], 'numeric collation: run-2 before run-10');
  t.same(ids(sortRuns(runs, statKey('loss', 'last'), 1)), ['run-1', 'run-10', 'run-2', 'bare'], "numbers first, then 'NaN'");
  t.same(ids(sortRuns(runs, '', 1)), ids(runs), 'no key: as listed');
  t.equal(compareCells(1, 'a'), -1);
  t.equal(compareCells('a', 1), 1);
  t.ok(compareCells(true, false) > 0);
});

t.test('filtering', async (t) => {
  const keys = ['lr', 'opt', 'optim/beta'];
  const f = (text: string) => ids(runs.filter(runFilter(text, keys)));
  t.same(f(''), ids(runs));
  t.same(f('run-1'), ['run-10', 'run-1'], 'a substring of the name');
  t.same(f('opt=sgd'), ['run-2'], 'key=value');
  t.same(f('opt=ADAM'), ['run-10', 'run-1'], 'text ignoring case');
  t.same(f('lr>0.005'), ['run-10', 'run-2']);
  t.same(f('lr>=0.01 lr<0.1'), ['run-2'], 'words all hold');
  t.same(f('lr<=0.01'), ['run-2', 'run-1']);
  t.same(f('lr!=0.1'), ['run-2', 'run-1', 'bare'], 'no value is not equal');
  t.same(f('beta<0.95'), ['run-10'], 'the last segments of a key');
  t.same(f('loss<0.3'), ['run-1'], "a data column: its last value ('NaN' is not < 0.3)");
  t.same(f('name=bare'), ['bare']);
  t.same(f('opt>b'), ['run-2'], 'text compared as text');
  t.same(f('beta=0.99'), ['run-2']);
  t.same(f('optim/beta=0.9'), ['run-10']);
  t.same(f('lr='), [], 'an empty value matches nothing');
});

t.test('the data columns shown, and the comma list', async (t) => {
  const s: SummaryBody = { table: 't', columns: ['acc', 'loss', 'lr'], params: [], runs: [] };
  t.same(statColumnsOf(s, []), ['acc', 'loss'], 'the first two by default');
  t.same(statColumnsOf(s, ['lr', 'nope']), ['lr']);
  t.same(statColumnsOf(s, ['nope']), ['acc', 'loss'], 'none there: the default');
  t.same(parseList(' loss, acc ,,'), ['loss', 'acc']);
});
