/**
 * tap's `after` script (.taprc): prints how many tests this run skipped for a missing system
 * peer, and which Debian packages would bring them, e.g.
 * `peer skips: 3 (chromium ×1, tabix ×2) — apt-get install chromium tabix`. The skips were
 * appended by test/peers.ts to a file named after the tap runner, this script's parent. Under
 * `npm test` (test/run.mjs) the count is also written to the file ROWLOG_PEER_SKIPS_OUT names,
 * which decides whether the coverage floor is checked.
 */
import fs from 'node:fs';
import { skipLog } from './peers.js';

const log = skipLog(process.ppid);
let lines: string[] = [];
try {
  lines = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
  fs.rmSync(log, { force: true });
} catch {
  // no skips this run
}
const byPackage = new Map<string, number>();
for (const line of lines) {
  const pkg = line.split('\t')[0] ?? '?';
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + 1);
}
const pkgs = [...byPackage.keys()].sort();
// Debian packages, and npm peers (`npm:<spec>`: optional peer dependencies, which npm will not add to the
// project that declares them; .ci/run installs them into .peers/ and links them into node_modules).
const debs = pkgs.filter((p) => !p.startsWith('npm:'));
const npms = pkgs.filter((p) => p.startsWith('npm:')).map((p) => p.slice(4));
const install = [
  ...(debs.length > 0 ? [`apt-get install ${debs.join(' ')}`] : []),
  ...(npms.length > 0 ? [`npm peers ${npms.join(' ')} as .ci/run installs them`] : []),
].join('; ');
console.log(
  lines.length === 0 ? 'peer skips: 0' : `peer skips: ${lines.length} (${pkgs.map((p) => `${p} ×${byPackage.get(p)}`).join(', ')}) — ${install}`,
);
const out = process.env.ROWLOG_PEER_SKIPS_OUT;
if (out !== undefined && out !== '') fs.writeFileSync(out, `${lines.length}\n`);
