/** `rowlog serve` (DESIGN §7). Being written (issue 5). */
import type { Command } from 'commander';

export function registerServe(_program: Command): void {}
