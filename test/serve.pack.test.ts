/**
 * What `npm pack` ships is enough for the page: the packed tarball, unpacked as an install
 * would, runs `rowlog serve`, and every file the page loads (index.html's scripts and styles,
 * then every ES module they import, dist/lib/serve/decimate.js among them) is served.
 * (The tarball's dependencies come from this repository's node_modules: the test runs offline.)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import t from 'tap';
import { ROOT, run, tmpdir } from './helpers.js';

function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', body }));
      })
      .on('error', reject);
  });
}

t.test('the packed package serves the page and every module it imports', async (t) => {
  const tmp = tmpdir(t, 'rowlog-pack-');
  const pack = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], { cwd: ROOT });
  t.equal(pack.status, 0, pack.stderr);
  const tarball = path.join(tmp, pack.stdout.trim().split('\n').pop() as string);
  const modules = path.join(tmp, 'app', 'node_modules');
  fs.mkdirSync(modules, { recursive: true });
  t.equal(run('tar', ['-xzf', tarball, '-C', modules]).status, 0);
  fs.renameSync(path.join(modules, 'package'), path.join(modules, 'rowlog'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(modules, 'rowlog', 'node_modules'));

  const main = path.join(modules, 'rowlog', 'dist', 'lib', 'cli', 'main.js');
  const server = spawn(process.execPath, [main, 'serve', path.join(tmp, 'runs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  t.teardown(() => (server.kill('SIGKILL'), exited));
  let stderr = '';
  server.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: server.stdout }).once('line', (line) => resolve(line.replace(/^rowlog serve: /, '')));
    server.once('exit', () => reject(new Error(`rowlog serve exited: ${stderr}`)));
  });

  const page = await get(url);
  t.equal(page.status, 200);
  const wanted = [...page.body.matchAll(/(?:src|href)="(\/[^"]*)"/g)].map((m) => new URL(m[1] as string, url).href);
  const seen = new Map<string, number>();
  while (wanted.length > 0) {
    const u = wanted.pop() as string;
    if (seen.has(u)) continue;
    const r = await get(u);
    seen.set(u, r.status);
    if (r.status === 200 && /javascript/.test(r.type)) {
      for (const m of r.body.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm)) wanted.push(new URL((m[1] ?? m[2]) as string, u).href);
    }
  }
  const paths = [...seen.keys()].map((u) => new URL(u).pathname).sort();
  t.same([...seen.entries()].filter(([, s]) => s !== 200), [], 'every file the page loads is there');
  for (const p of ['/align.js', '/app.js', '/app.css', '/axis.js', '/uplot.js', '/charts.js', '/group.js', '/dom.js', '/format.js', '/series.js', '/smooth.js', '/state.js', '/lib/serve/decimate.js']) t.ok(paths.includes(p), `${p} is loaded`);
  t.comment(paths.join(' '));
});
