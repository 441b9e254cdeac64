/**
 * The page's x-axis choice (issue 15 §2, docs/DESIGN.md §7): `$step`, relative time, wall time, or
 * a numeric column, for every chart at once; what the server is asked for (`x=`), and how its
 * values are written for people. Pure (no DOM): unit-tested in test/web.align.test.ts.
 */

/** Relative time: `$time` minus the run's start, shown as a duration. */
export const RELATIVE = '$relative';

/** What `/api/rows` and `/api/events` are asked for (`x=`) under the page's choice. */
export function serverAxis(choice: string): string {
  return choice === RELATIVE ? '$time' : choice;
}

/** The choice's name for people: `step`, `relative time`, `wall time`, or the column's. */
export function axisName(choice: string): string {
  return choice === '$step' ? 'step' : choice === RELATIVE ? 'relative time' : choice === '$time' ? 'wall time' : choice;
}

/** Tick steps of a relative-time axis (ms): round seconds, minutes, hours and days. */
export const DURATION_INCRS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5,
  12096e5, 2592e6, 7776e6, 31536e6,
];

/** A duration in ms, as short as it reads well: `850 ms`, `42 s`, `3 min 20 s`, `2 h 05 min`, `3 d 4 h`. */
export function fmtDuration(ms: number): string {
  const sign = ms < 0 ? '−' : '';
  const a = Math.abs(ms);
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  const s = Math.round(a / 1000);
  if (s < 60) return `${sign}${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${sign}${m} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${sign}${h} h ${String(m % 60).padStart(2, '0')} min`;
  return `${sign}${Math.floor(h / 24)} d ${h % 24} h`;
}

/** A date-time in ms since the epoch for a tick or the header: `2026-12-02 03:10:05` (local time). */
export function fmtWall(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
