/**
 * Waiting in tests: on a condition (re-checked on a short poll), or on an event, never for a
 * fixed time; and with ceilings generous enough for a loaded machine.
 *
 * Why the slack: the suite runs 2 files at once, each spawning children, often beside other
 * work (a CI box, a laptop compiling, two busy loops in the issue-10 check). A ceiling is
 * only there to turn a hang into a failure with a message, so it is `ms × SLACK`, where `ms`
 * is what the wait takes at most on a quiet machine and SLACK is 10 (ROWLOG_TEST_SLACK=N to
 * change it). A wait that passes returns as soon as its condition holds, so slack costs nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** How many times a quiet machine's time a wait may take before it fails. */
export const SLACK = Math.max(1, Number(process.env.ROWLOG_TEST_SLACK) || 10);

/** The ceiling for a wait that takes at most `ms` on a quiet machine. */
export function patient(ms: number): number {
  return ms * SLACK;
}

/**
 * Resolves once `cond()` holds, re-checked every `pollMs`; rejects with
 * `timed out waiting for <what>` after `patient(ms)`.
 */
export async function until(cond: () => boolean, what: string, ms = 5000, pollMs = 10): Promise<void> {
  const end = Date.now() + patient(ms);
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (${patient(ms)} ms)`);
    await sleep(pollMs);
  }
}

/**
 * True once `cond()` holds (re-checked every `pollMs`), false if it still does not after
 * `patient(ms)`: for an assertion on the outcome, `t.ok(await eventually(() => …), 'what')`.
 */
export async function eventually(cond: () => boolean, ms = 5000, pollMs = 10): Promise<boolean> {
  for (const end = Date.now() + patient(ms); Date.now() < end; await sleep(pollMs)) if (cond()) return true;
  return cond();
}
