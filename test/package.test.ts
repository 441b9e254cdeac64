/**
 * The package as a user gets it: a separate project installs this repo by path and imports
 * the public names from 'rowlog', in JavaScript and (types through the exports map) TypeScript.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { ROOT, run, tmpdir } from './helpers.js';

const NAMES = [
  'createLogger', 'logRow', 'summarize', 'summarizeRow', 'levelFilter', 'subsample',
  'jsonlSink', 'Level', 'registerLevel', 'declareSummarizer', 'isRowlogError',
];

t.test('a separate project installs rowlog by path and imports every public name', async (t) => {
  const app = tmpdir(t, 'rowlog-app-');
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // --ignore-scripts: installing a folder runs its `prepare` (npm run build), which rewrote dist/
  // while other test files' children were loading it (a child met a half-written module: the
  // suite's rare one-test failures). A user installs the published package, whose dist/ is built.
  const install = run('npm', ['install', '--no-audit', '--no-fund', '--offline', '--ignore-scripts', ROOT], { cwd: app });
  t.equal(install.status, 0, install.stderr);

  fs.writeFileSync(
    path.join(app, 'main.js'),
    `import { ${NAMES.join(', ')} } from 'rowlog';
const log = createLogger({ dir: 'run', console: false });
log.row('train', { loss: 0.5, w: new Float32Array([1, 2, 3]) });
await log.close();
console.log(JSON.stringify({ types: [${NAMES.join(', ')}].map((x) => typeof x), info: Level.INFO }));
`,
  );
  const r = run(process.execPath, ['main.js'], { cwd: app });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), {
    types: ['function', 'function', 'function', 'function', 'function', 'function', 'function', 'object', 'function', 'function', 'function'],
    info: 20,
  });
  t.match(zlib.gunzipSync(fs.readFileSync(path.join(app, 'run', 'train.jsonl.gz'))).toString(), /^\{"\$step":0,"\$time":\d+,"\$level":20,"loss":0.5,"w.max":3,"w.mean":2,"w.min":1,"w.std":0.816496580927726\}\n$/);
  t.match(fs.readFileSync(path.join(app, 'run', 'train.csv'), 'utf8'), /^\$step,\$time,\$level,loss,w.max,w.mean,w.min,w.std\n0,\d+,20,0.5,3,2,1,0.816496580927726\n$/);

  fs.writeFileSync(
    path.join(app, 'typed.ts'),
    `import { ${NAMES.join(', ')} } from 'rowlog';
import type { Entry, LoggerOptions, SubsampleOptions } from 'rowlog';
const opts: LoggerOptions = { dir: 'run', level: 'INFO' };
const every: SubsampleOptions = { every: 10 };
const log = createLogger(opts);
log.row('train', { loss: 1 }, { level: Level.TRACE, step: 3 });
// @ts-expect-error: a step must be a number
log.row('train', {}, { step: 'three' });
export const used: unknown[] = [${NAMES.join(', ')}, every, {} as Entry];
`,
  );
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')] }, files: ['typed.ts'] }),
  );
  const tsc = run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app });
  t.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
});
