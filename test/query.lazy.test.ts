/**
 * jq-web loads on first use, not when rowlog is imported (a training process must not pay its
 * wasm heap). Before it is loaded, a bad filter fails the stream with ERR_JQ; after jqReady(),
 * query() throws it at creation.
 */
import t from 'tap';
import { ROOT, run } from './helpers.js';

const script = `
  import { Readable } from 'node:stream';
  import { pipeline } from 'node:stream/promises';
  import { jqReady, query } from 'rowlog';
  // jq-web is compiled as a module of its own (query-worker.ts), never in require.cache: ask the
  // module rowlog itself uses (the same URL, so the same instance).
  const { jqLoaded } = await import('./dist/lib/read/query-worker.js');
  const loadedAtImport = jqLoaded();
  let early;
  try {
    await pipeline(Readable.from(['{"a":1}\\n']), query('.[ oops'), async function* (s) { for await (const _ of s); });
    early = 'no error';
  } catch (err) { early = err.code; }
  await jqReady();
  let late;
  const loadedAfterReady = jqLoaded();
  try { query('.[ oops'); late = 'no throw'; } catch (err) { late = err.code; }
  console.log(JSON.stringify({ loadedAtImport, loadedAfterReady, early, late }));
`;

t.test('importing rowlog does not load jq-web; bad filters fail with ERR_JQ before and after loading', async (t) => {
  const r = run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { loadedAtImport: false, loadedAfterReady: true, early: 'ERR_JQ', late: 'ERR_JQ' });
});
