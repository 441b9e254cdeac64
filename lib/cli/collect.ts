/** `rowlog collect` (DESIGN §7). Being written (issue 5). */
import type { Command } from 'commander';

export function registerCollect(_program: Command): void {}
