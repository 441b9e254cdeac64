/**
 * `npm run bench`: runs every `*.bench.js` beside this file, one after the other, each in its
 * own process (they spawn their own children per scenario), and stops at the first failure.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv[2];
for (const file of fs.readdirSync(here).filter((f) => f.endsWith('.bench.js')).sort()) {
  if (only !== undefined && !file.startsWith(only)) continue;
  const r = spawnSync(process.execPath, [path.join(here, file)], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
