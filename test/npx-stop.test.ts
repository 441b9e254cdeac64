/**
 * `npx rowlog serve` (and `collect`) stopped with SIGTERM: npm forwards the signal to the shell it runs the
 * command in, not to node (lib/cli/parent-watch.ts). The server must notice that the wrapper
 * has gone and stop, freeing its port, instead of living on as an orphan.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import t from 'tap';
import { ROOT, run, tmpdir } from './helpers.js';
import { patient } from './wait.js';

/** Pids of processes whose command line mentions `marker` (this test's own temp folder). */
function pidsWith(marker: string): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** True when nothing accepts connections on 127.0.0.1:`port`. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

for (const command of ['serve', 'collect'] as const) {
  t.test(`npx rowlog ${command} stops when npx is sent SIGTERM (the wrapper does not pass it on)`, async (t) => {
    const app = tmpdir(t, 'rowlog-npx-');
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const install = run('npm', ['install', '--no-audit', '--no-fund', '--offline', '--ignore-scripts', ROOT], { cwd: app });
    t.equal(install.status, 0, install.stderr);
    const runs = path.join(app, 'runs');
    fs.mkdirSync(runs);
    t.teardown(() => {
      for (const pid of pidsWith(runs)) process.kill(pid, 'SIGKILL'); // only if the fix failed
    });

    const args = command === 'serve' ? ['rowlog', 'serve', runs, '--port', '0'] : ['rowlog', 'collect', '--port', '0', '--dir', runs];
    const npx = spawn('npx', args, { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    npx.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // The pipes close when the last process holding them ends: node, the grandchild, not npx.
    const closed = new Promise<void>((resolve) => npx.stderr.once('close', () => resolve()));
    const line = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: npx.stdout }).once('line', resolve);
      npx.once('exit', () => reject(new Error(`npx exited first: ${stderr}`)));
    });
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(line)?.[1]);
    t.ok(port > 0, line);
    t.notOk(await refused(port), 'listening');
    const node = pidsWith(runs).filter((pid) => pid !== npx.pid);
    t.ok(node.length >= 1, `npx runs the ${command} in another process (${node.join(', ')})`);

    const stopped = Date.now();
    npx.kill('SIGTERM');
    const ceiling = new Promise<'timeout'>((resolve) => setTimeout(resolve, patient(1500), 'timeout').unref());
    t.not(await Promise.race([closed, ceiling]), 'timeout', `the ${command} ended after its wrapper did`);
    t.comment(`stopped ${Date.now() - stopped} ms after SIGTERM`);
    t.ok(await refused(port), 'the port is free');
    t.match(stderr, new RegExp(`rowlog: ${command}: the process that started it \\(npm/npx\\) has ended; stopping\\n`));
    t.same(pidsWith(runs), [], 'no process left');
  });
}
