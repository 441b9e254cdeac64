/**
 * `rowlog query` as a drop-in for the jq command: the same flags, stdout byte for byte and exit
 * status, against Debian's jq (1.6, where 1.6 and jq-web's 1.7.1 agree) and gojq as a second
 * peer (gojq sorts object keys and has no input_line_number: those cases are jq's only).
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CLI, runCli } from './cli.js';
import { run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

interface Case {
  args: string[];
  stdin?: string;
  /** Also compared with gojq. */
  gojq?: boolean;
  /** Not compared with jq 1.6 (where 1.6 and 1.7.1 differ). */
  notJq16?: boolean;
  /** Only the exit status is compared. */
  statusOnly?: boolean;
}

t.test('flags, inputs and exit statuses as jq and gojq have them', async (t) => {
  const haveJq = needs(t, 'jq');
  const haveGojq = needs(t, 'gojq');
  if (!haveJq && !haveGojq) return;
  const dir = tmpdir(t);
  const rows = path.join(dir, 'rows.jsonl');
  fs.writeFileSync(rows, '{"b":2,"a":"é","n":[1,2]}\n{"b":false,"a":"x","n":[]}\n{"b":null,"a":"y","n":[3]}\n');
  const pretty = path.join(dir, 'pretty.json');
  fs.writeFileSync(pretty, '{\n  "a": 1,\n  "n": [\n    1,\n    2\n  ]\n}\n{\n  "a": 2\n}\n{"a":3}{"a":4} 5\n"s"\n');
  const filterFile = path.join(dir, 'f.jq');
  fs.writeFileSync(filterFile, '# a comment\n.a\n');
  const slurped = path.join(dir, 'vals.json');
  fs.writeFileSync(slurped, '1\n{"k":2}\n[3]\n');
  const text = path.join(dir, 'text.txt');
  fs.writeFileSync(text, 'line one\nline "two"\n');
  const cases: Case[] = [
    { args: ['-S', '.', rows], gojq: true },
    { args: ['-S', '--tab', '.', rows], gojq: true },
    { args: ['-S', '--indent', '1', '.', rows], gojq: true },
    { args: ['-S', '--indent', '0', '.', rows] },
    { args: ['-a', '-c', '.', rows] },
    { args: ['-ac', '.a', rows] },
    { args: ['-j', '.a', rows], gojq: true },
    { args: ['-e', '.b', rows], gojq: true },
    { args: ['-e', '.n', rows], gojq: true },
    // -e judges the last value, not its text: a raw string "false" is true, -j's last false is false.
    { args: ['-r', '-e', '.'], stdin: '"false"\n', gojq: true },
    { args: ['-r', '-e', '.'], stdin: '"null"\n', gojq: true },
    { args: ['-j', '-e', '1, false'], stdin: 'null\n', gojq: true },
    { args: ['-j', '-e', '""'], stdin: '1\n', gojq: true },
    { args: ['-e', '.[]'], stdin: '[1,false]\n[]\n', gojq: true, notJq16: true },
    { args: ['-e', 'empty', rows], gojq: true },
    { args: ['--exit-status', 'select(.b == 2) | .b', rows], gojq: true, notJq16: true },
    { args: ['-rn', '"a", 1'], gojq: true },
    { args: ['-nr', '"a", 1'], gojq: true },
    { args: ['-sc', 'map(.n | length)', rows], gojq: true },
    { args: ['-cr', '.a', rows], gojq: true },
    { args: ['-c', '.', rows], stdin: '', gojq: false },
    { args: ['-c', '.a'], stdin: '{"a":1}\n{"a":2}\n', gojq: true },
    { args: ['-c', '.a', pretty], gojq: true },
    { args: ['-c', '-s', 'length', pretty], gojq: true },
    { args: ['-c', '-n', '[inputs | .a?]', pretty], gojq: true },
    { args: ['-R', '.', text], gojq: true },
    { args: ['-R', '-s', '.', text], gojq: true },
    { args: ['-Rr', 'ascii_downcase', text], gojq: true },
    { args: ['-f', filterFile, rows], gojq: true },
    { args: ['--from-file', filterFile, rows], gojq: true },
    { args: ['-c', '--slurpfile', 'v', slurped, '-n', '$v'], gojq: true },
    { args: ['-c', '--rawfile', 'v', text, '-n', '$v'], gojq: true },
    { args: ['-c', '-n', '--argjson', 'x', '5', '$ARGS.named.x, $x'] },
    { args: ['-c', '-n', '--arg', 'x', '5', '$ARGS'] },
    { args: ['-c', '-n', '$ARGS.positional', '--args', 'a', 'b'], gojq: true },
    { args: ['-c', '-n', '$ARGS.positional', '--jsonargs', '1', '{"z":[2]}'], gojq: true },
    { args: ['-c', 'input_filename', rows], gojq: true },
    { args: ['-c', '[input_filename, input_line_number]', rows] },
    { args: ['-r', '0 | strftime("%Y-%m-%dT%H:%M:%S %Z")', rows], gojq: true },
    { args: ['-r', '$ENV.ROWLOG_DROPIN, env.ROWLOG_DROPIN', rows], gojq: true },
    { args: ['-c', '.a + 1', rows], gojq: true },
    { args: ['.a |||', rows], gojq: true },
    { args: ['.', path.join(dir, 'nope.json')] },
    { args: ['-c', '.b', path.join(dir, 'nope.json'), rows], statusOnly: true },
  ];
  const env = { ...process.env, ROWLOG_DROPIN: 'yes', TZ: 'UTC' };
  for (const c of cases) {
    const label = c.args.map((a) => path.basename(a)).join(' ');
    const got = runCli(['query', ...c.args], { input: c.stdin ?? '', env });
    for (const [name, have] of [['jq', haveJq && c.notJq16 !== true], ['gojq', haveGojq && c.gojq === true]] as const) {
      if (!have) continue;
      // gojq always sorts keys and has no -S.
      const args = name === 'gojq' ? c.args.filter((a) => a !== '-S') : c.args;
      const want = run(peer(name) as string, args, { input: c.stdin ?? '', env });
      if (c.statusOnly !== true) t.equal(got.stdout, want.stdout, `stdout as ${name}: ${label}`);
      t.equal(got.status, want.status, `exit status as ${name} (${want.status}): ${label}`);
    }
  }
});

t.test('jq 1.7 behaviour the peers (jq 1.6, gojq 0.12) do not have: halt stops, --seq, -e on the last output', async (t) => {
  const dir = tmpdir(t);
  const rows = path.join(dir, 'rows.jsonl');
  fs.writeFileSync(rows, '{"a":1}\n{"a":2}\n{"a":3}\n');
  const halt = runCli(['query', '-c', '.a, halt', rows]);
  t.same([halt.stdout, halt.stderr, halt.status], ['1\n', '', 0], 'halt: no further outputs, exit 0');
  const str = runCli(['query', '-c', '.a, ("bye\\n" | halt_error(3))', rows]);
  t.same([str.stdout, str.stderr, str.status], ['1\n', 'bye\n', 3], 'halt_error: a string message as it is, its exit code');
  const obj = runCli(['query', '-c', '{x: .a} | halt_error', rows]);
  t.same([obj.stdout, obj.stderr, obj.status], ['', '{"x":1}\n', 5], 'halt_error: anything else as JSON and a newline, exit 5');
  const seq = runCli(['query', '--seq', '-c', '.a', rows]);
  t.equal(seq.stdout, '\x1e1\n\x1e2\n\x1e3\n', '--seq: an RS before each result');
  // jq 1.7.1 (jq-web's own output, measured): -r prints a string with no RS, anything else with one.
  const values = '"x\\ny", " z", "}", 1, {"a":[1]}';
  t.equal(runCli(['query', '-n', '--seq', '-r', values]).stdout, 'x\ny\n z\n}\n\x1e1\n\x1e{\n  "a": [\n    1\n  ]\n}\n', '--seq -r: strings as they are');
  t.equal(runCli(['query', '-n', '--seq', '-j', '"x", 1']).stdout, 'x\x1e1', '--seq -j');
  t.equal(runCli(['query', '-n', '--seq', '"x\\ny", {"a":[1]}']).stdout, '\x1e"x\\ny"\n\x1e{\n  "a": [\n    1\n  ]\n}\n', '--seq, pretty');
  t.equal(runCli(['query', '-e', 'select(.a == 2) | .a', rows]).status, 0, '-e: the last output is 2 (jq 1.6 said 4: no output for the last input)');
  t.equal(runCli(['query', '-e', '.a == 3 | not', rows]).status, 1, '-e: the last output is false');
  const missing = runCli(['query', '-c', '.a', path.join(dir, 'nope.jsonl'), rows]);
  t.same([missing.stdout, missing.status], ['1\n2\n3\n', 2], 'a missing file is said, the others are read, exit 2');
  t.match(missing.stderr, /^rowlog: query: ENOENT: no such file or directory/);
  const help = runCli(['query', '--help']);
  t.equal(help.status, 0);
  for (const flag of ['-e, --exit-status', '-S, --sort-keys', '-j, --join-output', '--tab', '--indent N', '-a, --ascii-output', '-C, --color-output', '-M, --monochrome-output', '-R, --raw-input', '--seq', '-f, --from-file', '--slurpfile', '--rawfile', '--args', '--jsonargs', '--arg ', '--argjson', '-s, --slurp', '-n, --null-input', '-r, --raw-output', '-c, --compact-output', '--strict', '--with-file']) {
    t.ok(help.stdout.includes(flag), `--help lists ${flag}`);
  }
  const l = runCli(['query', '-L', dir, '.', rows]);
  t.equal(l.status, 2);
  t.match(l.stderr, /^rowlog: query: -L \(module directories\) is not supported/);
});

t.test('colour: on a terminal by default (as jq 1.7), -C forces it, -M and NO_COLOR turn it off', async (t) => {
  const dir = tmpdir(t);
  const rows = path.join(dir, 'rows.jsonl');
  fs.writeFileSync(rows, '{"a":1}\n');
  const coloured = '\x1b[1;39m{\x1b[0m\x1b[1;34m"a"\x1b[0m\x1b[1;39m:\x1b[0m\x1b[0;39m1\x1b[0m\x1b[1;39m\x1b[1;39m}\x1b[0m\n';
  t.equal(runCli(['query', '-C', '-c', '.', rows]).stdout, coloured, '-C on a pipe');
  t.equal(runCli(['query', '-c', '.', rows]).stdout, '{"a":1}\n', 'no colour on a pipe');
  if (!needs(t, 'script', 'a terminal for stdout (script)')) return;
  const onTty = (extra: string[], env: NodeJS.ProcessEnv = {}) =>
    run(peer('script') as string, ['-qec', [process.execPath, CLI, 'query', ...extra, '-c', '.', rows].map((a) => `'${a}'`).join(' '), '/dev/null'], {
      env: { ...process.env, NO_COLOR: '', ...env },
    }).stdout.replace(/\r\n/g, '\n');
  t.equal(onTty([]), coloured, 'a terminal: colour');
  t.equal(onTty(['-M']), '{"a":1}\n', '-M');
  t.equal(onTty([], { NO_COLOR: '1' }), '{"a":1}\n', 'NO_COLOR');
});
