/**
 * The query progress line (lib/cli/progress-line.ts, issue 11 §1): drawn on stderr only when it
 * is a terminal and the input is big, and cleared before any message so that a message never
 * shares its line (`query: 2% of 177 MB0` was the bug). A real terminal is tested through
 * `script` in test/query.dropin.test.ts; this checks the rule on a stand-in terminal.
 */
import t from 'tap';
import { Terminal } from '../lib/cli/progress-line.js';
import { until } from './wait.js';

/** Runs `f` with stderr a stand-in terminal whose writes are collected. */
async function onTerminal(f: (written: () => string) => Promise<void>): Promise<void> {
  const stderr = process.stderr as NodeJS.WriteStream & { isTTY: boolean };
  const { write } = stderr;
  const wasTty = stderr.isTTY;
  let text = '';
  stderr.isTTY = true;
  stderr.write = ((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  }) as typeof stderr.write;
  try {
    await f(() => text);
  } finally {
    stderr.write = write;
    stderr.isTTY = wasTty;
  }
}

t.test('on a terminal and a big input: the line is drawn in place, cleared before a message and at the end', async (t) => {
  await onTerminal(async (written) => {
    const term = new Terminal();
    const progress = { bytes: 45 << 20 };
    term.startProgress(100 << 20, progress);
    await until(() => written().includes('query: 45% of 100 MB'), 'the progress line');
    t.ok(written().startsWith('\r\x1b[Kquery: 45% of 100 MB'), 'drawn at the start of its line, the line cleared');
    term.say('rowlog: query: a message\n');
    t.ok(written().endsWith('\r\x1b[Krowlog: query: a message\n'), 'cleared before the message');
    term.beforeOut(); // stdout is not the same terminal here: nothing to clear
    term.stop();
    t.notOk(written().endsWith('\r\x1b[K\r\x1b[K'), 'nothing cleared twice');
  });
});

t.test('a small input, or stderr not a terminal: no progress line at all', async (t) => {
  await onTerminal(async (written) => {
    const term = new Terminal();
    term.startProgress(10 << 20, { bytes: 0 });
    t.equal(term.timer, undefined, 'no timer for 10 MB');
    term.say('x\n');
    term.stop();
    t.equal(written(), 'x\n');
  });
  const term = new Terminal();
  term.startProgress(100 << 20, { bytes: 0 });
  t.equal(term.timer, undefined, 'stderr is not a terminal under tap');
  term.stop();
});
