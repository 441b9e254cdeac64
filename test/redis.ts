/**
 * A real Redis for a test (issue 14): Debian's `redis-server`, started by the test file on a free
 * loopback port with its own temporary folder, and stopped by its pid. `aof: true` turns on the
 * append-only file (fsync every write), for tests that restart the server and expect its
 * streams back. Tests call `needs(t, 'redis-server')` first (test/peers.ts): on a machine
 * without it they are peer skips.
 */
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { freePort } from './ports.js';
import { peer } from './peers.js';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` (with `:password@` when one was asked). */
  readonly url: string;
  readonly port: number;
  /** The server's folder (its AOF and dump live there). */
  readonly dir: string;
  /** The running server's pid. */
  readonly pid: number;
  /** Stops the server (SIGTERM by pid, then SIGKILL after 10 s) and resolves when it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and folder (after `stop`), resolving when it answers. */
  start(): Promise<void>;
  /** Runs `redis-cli` against it and returns its output (for checks a user would make). */
  cli(...args: string[]): string;
}

export interface RedisServerOptions {
  /** Append-only file, fsync always. @default false */
  aof?: boolean;
  /** `requirepass`. @default none */
  password?: string;
}

/** Resolves when something accepts connections on 127.0.0.1:port and answers PING. */
async function answers(port: number, proc: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`redis-server exited (${proc.exitCode ?? proc.signalCode}) before it answered`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => s.write('PING\r\n'));
      s.once('data', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port} within ${timeoutMs} ms`);
    // wait for the process to get further: an event (its output) or a short poll
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts a redis-server for one test file; call `stop()` in `t.teardown`. */
export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const bin = peer('redis-server');
  if (bin === undefined) throw new Error('redis-server is not installed (call needs(t, "redis-server") first)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-redis-'));
  const port = await freePort();
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--daemonize', 'no',
    '--loglevel', 'warning',
    '--appendonly', opts.aof === true ? 'yes' : 'no',
    '--appendfsync', 'always',
    ...(opts.password === undefined ? [] : ['--requirepass', opts.password]),
  ];
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const launch = async () => {
    const p = spawn(bin, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    proc = p;
    exited = new Promise((resolve) => p.once('exit', () => resolve()));
    await answers(port, p);
  };
  await launch();
  const auth = opts.password === undefined ? '' : `:${encodeURIComponent(opts.password)}@`;
  const server: RedisServer = {
    url: `redis://${auth}127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return proc?.pid ?? -1;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const p = proc;
      if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
      p.kill(signal);
      const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
    start: launch,
    cli(...a: string[]) {
      return execFileSync('redis-cli', ['-p', String(port), ...(opts.password === undefined ? [] : ['-a', opts.password, '--no-auth-warning']), ...a], { encoding: 'utf8' });
    },
  };
  return server;
}

/** Stops `server` and removes its folder (for `t.teardown`). */
export async function removeRedis(server: RedisServer): Promise<void> {
  await server.stop();
  fs.rmSync(server.dir, { recursive: true, force: true });
}
