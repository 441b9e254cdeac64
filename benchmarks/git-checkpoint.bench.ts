/**
 * The git checkpoint (run by `npm run bench`, issue 13 §2): `createLogger({git: true})`'s commit of
 * the working tree on a generated repository of 3,000 committed files (20 of them modified, 10
 * untracked), against `git status` of the same tree in the same run (the least a user waits
 * for in that repository). Each checkpoint follows an edit, so each makes a new commit. Medians
 * of 5. Skipped when git is not on PATH.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gitCheckpoint } from '../lib/run/git-checkpoint.js';

const FILES = 3000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const git = (cwd: string, args: string[]) => {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' } });
  if (r.error !== undefined || r.status !== 0) throw new Error(`git ${args[0]}: ${r.error?.message ?? r.stderr}`);
};

if (spawnSync('git', ['--version']).status !== 0) {
  console.log('git checkpoint: skipped (no git on PATH)');
} else {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-git-'));
  try {
    git(repo, ['init', '-q']);
    for (let i = 0; i < FILES; i++) {
      const file = path.join(repo, `src${i % 30}`, `m${i}.ts`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, `export const v${i} = ${i};\n`.repeat(40));
    }
    git(repo, ['add', '-A']);
    git(repo, ['commit', '-q', '-m', 'init']);
    for (let i = 0; i < 20; i++) fs.appendFileSync(path.join(repo, `src${i % 30}`, `m${i}.ts`), '// edited\n');
    for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(repo, `new${i}.ts`), `export const n = ${i};\n`);
    const status: number[] = [];
    const checkpoint: number[] = [];
    for (let k = 0; k < 5; k++) {
      fs.appendFileSync(path.join(repo, 'new0.ts'), `// ${k}\n`);
      let t0 = performance.now();
      git(repo, ['status', '--porcelain']);
      status.push(performance.now() - t0);
      t0 = performance.now();
      const cp = gitCheckpoint(repo, { dir: path.join(repo, 'runs', 'bench'), name: 'bench', id: String(k) });
      checkpoint.push(performance.now() - t0);
      if (cp.reused) throw new Error('an edited tree reused the last checkpoint');
    }
    console.log(`git checkpoint: ${FILES} committed files, 20 modified, 10 untracked; median of 5`);
    console.log(
      `  git status ${median(status).toFixed(0)} ms   checkpoint ${median(checkpoint).toFixed(0)} ms ` +
        `(${(median(checkpoint) / median(status)).toFixed(1)}× git status)`,
    );
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
  }
}
