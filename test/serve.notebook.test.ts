/**
 * The README's Python example of serve's HTTP API ("serve's HTTP API (how a notebook reads a
 * live run)") run as it is printed, with python3's standard library, against a real `serve`:
 * it lists the runs, reads a chart's points, then follows the run live and prints a row another
 * process logs. The code is taken from the README, so the README cannot drift from the API.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import t from 'tap';
import { createLogger } from '../lib/index.js';
import { serve } from '../lib/serve/server.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { patient } from './wait.js';

/** The README's Python block of the HTTP API section. */
function readmePython(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf("### serve's HTTP API"));
  const m = /```python\n([\s\S]*?)```/.exec(section);
  if (!m?.[1]) throw new Error("no Python block in the README's HTTP API section");
  return m[1];
}

t.test("the README's Python reads the runs, a chart's points, and a live row", async (t) => {
  if (!needs(t, 'python3')) return;
  const root = tmpdir(t);
  const dir = path.join(root, 'exp');
  const log = createLogger({ dir, console: false, exitHooks: false });
  t.teardown(() => log.close());
  for (let i = 0; i < 3000; i++) log.row('train', { loss: 1 / (i + 1) }, { step: i });
  await log.flush();
  const h = await serve({ dir: root, pollMs: 50, onWarning: () => {} });
  t.teardown(() => h.close());

  const code = readmePython().replace('http://127.0.0.1:6007', h.url.replace(/\/$/, ''));
  const py = spawn('python3', ['-u', '-c', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => py.kill('SIGKILL'));
  let err = '';
  py.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const lines: string[] = [];
  const seen = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`python printed ${JSON.stringify(lines)}; stderr ${err}`)), patient(30_000));
    readline.createInterface({ input: py.stdout }).on('line', (line) => {
      lines.push(line);
      if (lines.length === 2) {
        // The snapshot is read: log a row for the follow loop to print.
        log.row('train', { loss: 0.125 }, { step: 5000 });
        void log.flush();
      }
      if (line.startsWith('step 5000')) {
        clearTimeout(timer);
        resolve();
      }
    });
    py.once('exit', (c) => reject(new Error(`python exited ${c}: ${err}`)));
  });
  await seen;
  t.equal(lines[0], "exp ['train']", 'the runs and their tables');
  t.equal(lines[1], '3000 rows; last loss 0.0003333333333333333 at step 2999', "a chart's last point");
  t.equal(lines.at(-1), 'step 5000 loss 0.125', 'the row logged while it followed');
});
