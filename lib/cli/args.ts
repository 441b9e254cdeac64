/** What several `rowlog` commands share: argument parsers (a bad value is a usage error, exit 2) and the stop signal. */
import { InvalidArgumentError } from 'commander';

/** A whole number ≥ 0 (`--lines`, `--pace`). */
export function countArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a whole number ≥ 0.');
  return n;
}

/** A whole number ≥ 1 (`--epochs`). */
export function positiveArg(v: string): number {
  const n = countArg(v);
  if (n < 1) throw new InvalidArgumentError('must be a whole number ≥ 1.');
  return n;
}

/** A TCP port, 0 to 65535 (0 picks a free one where a server listens). */
export function portArg(v: string): number {
  const n = countArg(v);
  if (n > 65535) throw new InvalidArgumentError('must be a port number from 0 to 65535.');
  return n;
}

/** Resolves on the first SIGINT or SIGTERM (a second one then has its default effect). */
export function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
