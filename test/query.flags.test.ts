/**
 * `rowlog query`'s jq flags, inputs and exit statuses on a machine without jq or gojq: the same
 * cases as test/query.dropin.test.ts, which compares them with jq 1.6 and gojq where those are
 * installed (CI installs both). The expected stdout, stderr and status in
 * test/fixtures/query-flags.json are jq 1.7's (jq 1.6's and gojq's where those agree, as the
 * drop-in test checks), so a newcomer's `npm test` checks the flags too.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runCli } from './cli.js';
import { ROOT, tmpdir } from './helpers.js';

interface Expected {
  args: string[];
  stdin?: string;
  stdout: string;
  stderr: string;
  status: number;
}

const cases = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'query-flags.json'), 'utf8')) as Expected[];

t.test('every flag, input form and exit status as jq 1.7 has them', async (t) => {
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'rows.jsonl'), '{"b":2,"a":"é","n":[1,2]}\n{"b":false,"a":"x","n":[]}\n{"b":null,"a":"y","n":[3]}\n');
  fs.writeFileSync(path.join(dir, 'pretty.json'), '{\n  "a": 1,\n  "n": [\n    1,\n    2\n  ]\n}\n{\n  "a": 2\n}\n{"a":3}{"a":4} 5\n"s"\n');
  fs.writeFileSync(path.join(dir, 'f.jq'), '# a comment\n.a\n');
  fs.writeFileSync(path.join(dir, 'vals.json'), '1\n{"k":2}\n[3]\n');
  fs.writeFileSync(path.join(dir, 'text.txt'), 'line one\nline "two"\n');
  const env = { ...process.env, ROWLOG_DROPIN: 'yes', TZ: 'UTC' };
  t.ok(cases.length >= 35, `${cases.length} cases`);
  for (const c of cases) {
    const label = c.args.join(' ');
    const got = runCli(['query', ...c.args], { cwd: dir, input: c.stdin ?? '', env });
    t.equal(got.stdout, c.stdout, `stdout: ${label}`);
    t.equal(got.status, c.status, `exit ${c.status}: ${label}`);
    if (c.stderr === '') t.equal(got.stderr, '', `no stderr: ${label}`);
    else t.ok(got.stderr.startsWith(c.stderr.split('\n')[0] as string), `stderr ${JSON.stringify(c.stderr.slice(0, 50))}: ${label}`);
  }
});

t.test("usage errors: exit 2 and one line naming what is wrong (rowlog's wording; jq's status)", async (t) => {
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'text.txt'), 'line one\n');
  const cases: Array<[string[], RegExp]> = [
    [['--indent'], /^rowlog: query: option '--indent' needs a number\n$/],
    [['--indent', 'x', '.'], /^rowlog: query: --indent takes a number from 0 to 7\n$/],
    [['--indent', '9', '.'], /^rowlog: query: --indent takes a number from 0 to 7\n$/],
    [['--arg', 'x'], /^rowlog: query: option '--arg' needs NAME and VALUE\n$/],
    [['-L', dir, '.'], /^rowlog: query: -L \(module directories\) is not supported: jq-web has no file system for modules/],
    [['--slurpfile', 'v', 'missing.json', '-n', '1'], /^rowlog: query: ENOENT: no such file or directory, open 'missing\.json'\n$/],
    [['--rawfile', 'v', 'missing.txt', '-n', '1'], /^rowlog: query: ENOENT: no such file or directory, open 'missing\.txt'\n$/],
    [['-Z', '.'], /^rowlog: query: unknown option '-Z'\n$/],
    [['--bogus', '.'], /^rowlog: query: unknown option '--bogus'\n$/],
    [['-n', '--jsonargs', '1', '{bad'], /^rowlog: query: --jsonargs: invalid JSON text passed to --jsonargs: \{bad\n$/],
    [['--argjson', 'x', '{bad', '-n', '1'], /^rowlog: query: --argjson x: must be JSON text \(got \{bad\)\n$/],
  ];
  for (const [args, said] of cases) {
    const r = runCli(['query', ...args], { cwd: dir, input: '' });
    t.equal(r.status, 2, `exit 2: ${args.join(' ')}`);
    t.match(r.stderr, said, args.join(' '));
    t.equal(r.stdout, '');
  }
});
