/** A child process a test talks to through its output lines: start it, wait for a line, kill it, wait for its end. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

export interface Child {
  proc: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first stdout line matching `re` (already seen or to come); rejects if the child ends first. */
  line(re: RegExp): Promise<string>;
  /** Resolves when the child has ended, with its exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** Starts `node script args` with `env` added to the environment. */
export function startChild(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let err = '';
  let rest = '';
  const waiters: Array<() => void> = [];
  proc.stdout?.setEncoding('utf8').on('data', (s: string) => {
    const parts = (rest + s).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      resolve({ code, signal });
      setImmediate(() => waiters.splice(0).forEach((w) => w()));
    }),
  );
  let ended = false;
  void exited.then(() => (ended = true));
  const line = (re: RegExp): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.find((l) => re.test(l));
        if (found !== undefined) resolve(found);
        else if (ended) reject(new Error(`child ended without a line matching ${re}; stdout: ${lines.join(' | ')}; stderr: ${err}`));
        else waiters.push(check);
      };
      check();
    });
  return { proc, lines, line, exited, stderr: () => err };
}
