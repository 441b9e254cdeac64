/**
 * System peers: the programs outside Node that some tests read rowlog's files with (jq, gojq, bgzip,
 * pandas, a real Chromium, prlimit, …). Every test that needs one asks `needs(t, peer)` — the only place
 * that probes for them.
 *
 * Why one helper: a fresh machine (Node 20 and python3, nothing else) must pass `npm test`, and a
 * missing peer there is not a bug in rowlog. So an absent peer is a *skip*, with one line naming
 * the Debian package that brings it (`skip: needs Debian chromium`), and the run ends with the
 * count of such skips (test/peer-skips.ts, tap's `after` script, prints `peer skips: N (…)`).
 * CI must still check every peer: `.ci/run` installs them and sets ROWLOG_REQUIRE_PEERS=1, under
 * which a missing peer is a failing assertion naming the package instead of a skip.
 *
 * Environment (tests only):
 * - ROWLOG_REQUIRE_PEERS=1: a missing peer fails the test (CI).
 * - ROWLOG_TEST_HIDE_PEERS=chromium,jq,bgzip,python3-pandas: treat these peers as absent even if
 *   installed, to see what a fresh machine sees. Names are peer names or Debian package names
 *   (`bgzip` or `tabix`, `pandas` or `python3-pandas`).
 *
 * How skips are counted although tap runs files in parallel processes: each skip appends one line
 * (`package<TAB>test file<TAB>what was skipped`) to .tap/peer-skips/<pid of the tap runner>.log;
 * the runner is every test file's parent and the `after` script's parent too, so one run's
 * skips land in one file and concurrent runs do not mix.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The command on PATH, as a path; undefined when absent. */
function onPath(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The first python3 that can import `mod`: Debian's /usr/bin/python3 first (a pyenv python3 may not see dist-packages). */
function pythonWith(mod: string): string | undefined {
  return ['/usr/bin/python3', 'python3'].find((py) => {
    try {
      execFileSync(py, ['-c', `import ${mod}`], { stdio: 'ignore', timeout: 60_000 });
      return true;
    } catch {
      return false;
    }
  });
}

/** The folder of an npm package this project can import, when it is installed. */
function npmPackage(name: string): string | undefined {
  const dir = path.join(ROOT, 'node_modules', name);
  return fs.existsSync(path.join(dir, 'package.json')) ? dir : undefined;
}

/** Each peer: the Debian package that brings it, and how to find it (a path or command to run). */
const PEERS = {
  chromium: { pkg: 'chromium', find: () => (fs.existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined) },
  jq: { pkg: 'jq', find: () => onPath('jq') },
  gojq: { pkg: 'gojq', find: () => onPath('gojq') },
  bgzip: { pkg: 'tabix', find: () => onPath('bgzip') },
  gzip: { pkg: 'gzip', find: () => onPath('gzip') },
  zcat: { pkg: 'gzip', find: () => onPath('zcat') },
  python3: { pkg: 'python3', find: () => pythonWith('json') },
  pandas: { pkg: 'python3-pandas', find: () => pythonWith('pandas') },
  prlimit: { pkg: 'util-linux', find: () => onPath('prlimit') },
  tmux: { pkg: 'tmux', find: () => onPath('tmux') },
  script: { pkg: 'bsdutils', find: () => onPath('script') },
  /** Python's protobuf runtime and protoc: TensorBoard's Event messages decoded by code rowlog did not write. */
  protobuf: { pkg: 'python3-protobuf', find: () => pythonWith('google.protobuf') },
  protoc: { pkg: 'protobuf-compiler', find: () => onPath('protoc') },
  /** An independent CRC32C (the `crc32c` module), for TFRecord's masked checksums. */
  crc32c: { pkg: 'python3-crc32c', find: () => pythonWith('crc32c') },
  sqlite3: { pkg: 'sqlite3', find: () => onPath('sqlite3') },
  /** The git CLI: the checkpoint's tests make real repositories with it. */
  git: { pkg: 'git', find: () => onPath('git') },
  /** A real Redis server (7.0 on Debian 12) for the Redis sink, collector and readers; test/redis.ts starts one per test file. */
  'redis-server': { pkg: 'redis-server', find: () => onPath('redis-server') },
  /** Not Debian's: the optional npm peer of sqliteSink, installed as .ci/run does (into .peers/, linked into node_modules). */
  'better-sqlite3': { pkg: 'npm:better-sqlite3@12', find: () => npmPackage('better-sqlite3') },
} satisfies Record<string, { pkg: string; find: () => string | undefined }>;

export type Peer = keyof typeof PEERS;

const hidden = new Set(
  (process.env.ROWLOG_TEST_HIDE_PEERS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== ''),
);
const found = new Map<Peer, string | undefined>();

/** The Debian package that brings `peer`. */
export function debianPackage(peer: Peer): string {
  return PEERS[peer].pkg;
}

/**
 * Where `peer` is (a path, or for python3/pandas the python to run), or undefined when it is
 * absent or hidden by ROWLOG_TEST_HIDE_PEERS. Probed once per process. Does not skip anything:
 * a test that cannot go on without the peer calls `needs`.
 */
export function peer(name: Peer): string | undefined {
  if (hidden.has(name) || hidden.has(PEERS[name].pkg)) return undefined;
  if (!found.has(name)) found.set(name, PEERS[name].find());
  return found.get(name);
}

/** The file this run's peer skips are appended to (see the header). */
export function skipLog(runner = process.ppid): string {
  return path.join(ROOT, '.tap', 'peer-skips', `${runner}.log`);
}

/**
 * True when every peer in `peers` is there. Otherwise the missing ones are reported on `t` —
 * a skipped assertion `skip: needs Debian <package>` (counted at the end of the run), or under
 * ROWLOG_REQUIRE_PEERS=1 a failing one — and it returns false: the caller leaves out what needs
 * them (`if (!needs(t, 'jq')) return;` for a whole test, `if (needs(t, 'bgzip', 'bgzip -t')) …`
 * for one check). `what` says what is left out (default: the test's name).
 */
export function needs(t: Test, peers: Peer | Peer[], what = t.name): boolean {
  const missing = [peers].flat().filter((p) => peer(p) === undefined);
  for (const p of missing) {
    const pkg = PEERS[p].pkg;
    const from = pkg.startsWith('npm:') ? `npm ${pkg.slice(4)}` : `Debian ${pkg}`;
    if (process.env.ROWLOG_REQUIRE_PEERS === '1') {
      t.fail(`needs ${from} (${p} is missing; ROWLOG_REQUIRE_PEERS=1 makes that a failure): ${what}`);
      continue;
    }
    t.pass(`skip: needs ${from}`, { skip: what });
    try {
      const log = skipLog();
      fs.mkdirSync(path.dirname(log), { recursive: true });
      fs.appendFileSync(log, `${pkg}\t${path.relative(ROOT, process.argv[1] ?? '?')}\t${what.replace(/\s+/g, ' ')}\n`);
    } catch {
      // counting is best effort; the skip itself is in the TAP output
    }
  }
  return missing.length === 0;
}
