/**
 * `rowlog query` against the real jq command on the same files: plain JSONL and gzip (`zcat
 * file | jq`). JSON output is compared as JSON values (number spelling differs between jq
 * versions, e.g. 1E+17 vs 1e+17); `-r` output byte for byte.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { runCli } from './cli.js';
import { run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const JQ = peer('jq') ?? 'jq';
const rowlog = (args: string[]) => runCli(['query', ...args]);

/** Filters with their flags; `raw` cases are compared byte for byte. */
const CASES: Array<{ flags: string[]; filter: string; raw?: boolean }> = [
  { flags: ['-c'], filter: 'select(.step % 7 == 0)' },
  { flags: ['-c'], filter: '.tags | map(. * 2)' },
  { flags: ['-c', '-s'], filter: 'sort_by(.loss) | .[0:5] | map(.step)' },
  { flags: ['-c', '-s'], filter: 'group_by(.name) | map({name: .[0].name, n: length, steps: (map(.step) | add)})' },
  { flags: ['-c', '-s'], filter: 'min_by(.loss)' },
  { flags: ['-c', '-s'], filter: 'max_by(.step) | .step' },
  { flags: ['-c', '-n'], filter: 'reduce inputs as $r (0; . + $r.step)' },
  { flags: ['-c'], filter: '[paths]' },
  { flags: ['-c'], filter: 'to_entries | map(.key)' },
  { flags: ['-r'], filter: '[.name, .step, .loss] | @csv', raw: true },
  { flags: ['-r'], filter: '[.name, .step, .note] | @tsv', raw: true },
  { flags: ['-c', '--arg', 'n', 'beta'], filter: 'select(.name == $n) | .step' },
  { flags: ['-c', '--argjson', 'k', '{"max":4}'], filter: 'select(.step < $k.max)' },
  { flags: ['-c', '-s'], filter: 'length' },
  { flags: ['-c', '-n'], filter: '[inputs | .step] | add' },
  { flags: ['-r'], filter: '"\\(.name) at step \\(.step): \\(.tags | length) tags"', raw: true },
  { flags: ['-c', '-n'], filter: '[limit(3; inputs | .step)]' },
  { flags: ['-c', '-n'], filter: 'first(inputs | select(.name == "gamma")) | .step' },
  { flags: ['-c', '-n'], filter: 'input | .step, (input | .name)' },
  { flags: ['-c'], filter: 'first(.tags[]), [limit(2; .tags[])]' },
  { flags: ['-c'], filter: '.nested | keys' },
  { flags: ['-c'], filter: 'del(.tags) | with_entries(select(.value != null))' },
  { flags: ['-c'], filter: '{s: .step, l: (.loss * 100 | floor), big}' },
  { flags: ['-c', '-s'], filter: 'map(.loss) | add / length' },
  { flags: ['-c'], filter: 'if .step > 150 then "late" else "early" end' },
  { flags: ['-c', '-s'], filter: 'unique_by(.name) | map(.name)' },
  { flags: [], filter: 'select(.step == 3) | .nested' },
  { flags: ['-c'], filter: '[.. | numbers] | length' },
  { flags: ['-r'], filter: 'select(.step < 5) | .name, .step', raw: true },
];

/** The JSON values jq printed: one per line, or pretty-printed ones (a value starts at column 0). */
function values(text: string): unknown[] {
  return JSON.parse(`[${text.trimEnd().replace(/\n(?=[^\s}\]])/g, ',\n')}]`) as unknown[];
}

t.test('rowlog query prints what jq prints, for JSONL and gzip inputs', async (t) => {
  if (!needs(t, 'jq')) return;
  t.ok(CASES.length >= 20);
  const dir = tmpdir(t);
  const names = ['alpha', 'beta', 'gamma', 'delta "q"'];
  const lines = Array.from({ length: 300 }, (_, step) =>
    JSON.stringify({
      step,
      name: names[step % names.length],
      loss: Math.round(1e6 / (step + 1)) / 1e4,
      tags: Array.from({ length: step % 4 }, (_, k) => k + step),
      nested: { a: step % 5, b: { c: step % 2 === 0 } },
      note: step % 3 === 0 ? null : `n\t${step}`,
      big: step === 7 ? 1e17 : step,
    }),
  );
  const jsonl = path.join(dir, 'rows.jsonl');
  fs.writeFileSync(jsonl, `${lines.join('\n')}\n`);
  const gz = path.join(dir, 'rows.jsonl.gz');
  fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(jsonl)));

  for (const { flags, filter, raw } of CASES) {
    const label = `${flags.join(' ')} '${filter}'`;
    const want = run(JQ, [...flags, filter, jsonl]);
    t.equal(want.status, 0, `jq ran: ${label}: ${want.stderr}`);
    const wantGz = run('sh', ['-c', `zcat "$1" | ${JQ} "$@"`.replace('"$@"', flags.map((_, i) => `"$${i + 2}"`).join(' ') + ` "$${flags.length + 2}"`), 'sh', gz, ...flags, filter]);
    t.equal(wantGz.stdout, want.stdout, `zcat | jq reads the same: ${label}`);
    for (const file of [jsonl, gz]) {
      const got = rowlog([...flags, filter, file]);
      t.equal(got.status, 0, `${label} on ${path.basename(file)}: ${got.stderr}`);
      t.equal(got.stderr, '', label);
      if (raw) t.equal(got.stdout, want.stdout, `byte for byte: ${label} on ${path.basename(file)}`);
      else t.same(values(got.stdout), values(want.stdout), `${label} on ${path.basename(file)}`);
    }
  }
});
