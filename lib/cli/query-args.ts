/**
 * `rowlog query`'s command line, read the way jq reads its own (docs/DESIGN.md §7): jq's flags
 * with their short and long names, short ones combined (`-sc`, `-rn`, `-nr`), `--arg NAME VALUE`
 * and the other two-word options (which commander cannot express), `--args`/`--jsonargs` for
 * positional arguments, `-f FILE` for the filter. Files come after the filter; none means stdin
 * when stdin is not a terminal (as jq).
 */
import fs from 'node:fs';
import type { QueryOptions } from '../read/query.js';

/** What the command line asked for. */
export interface QueryArgs {
  filter: string;
  files: string[];
  opts: QueryOptions;
  withFile: boolean;
  /** `--allow-damage`: a damaged gzip member skipped does not make the exit status 1. */
  allowDamage: boolean;
  /** `--ancestry`: a table file of a resumed run is read with its ancestors' rows first (readLog's `ancestry`). */
  ancestry: boolean;
  /** `-e`: the exit status says whether the last output was true. */
  exitStatus: boolean;
  /** `-C` true, `-M` false, else colour when stdout is a terminal and NO_COLOR is unset. */
  color: boolean | undefined;
  /** `--slurpfile NAME FILE`, `--rawfile NAME FILE`: read once the filter compiles. */
  slurpFiles: Array<[string, string]>;
  rawFiles: Array<[string, string]>;
  help: boolean;
}

/** A usage error: one line on stderr, exit 2. */
export class UsageError extends Error {}

type Flag = 'slurp' | 'compact' | 'raw' | 'nullInput' | 'strict' | 'rawInput' | 'seq';
/** Flags that only switch something on. */
const SWITCH: Record<string, Flag | 'exitStatus' | 'withFile' | 'allowDamage' | 'ancestry' | 'help' | 'color' | 'mono' | `jq:${string}`> = {
  '-s': 'slurp',
  '--slurp': 'slurp',
  '-c': 'compact',
  '--compact-output': 'compact',
  '-r': 'raw',
  '--raw-output': 'raw',
  '-n': 'nullInput',
  '--null-input': 'nullInput',
  '-R': 'rawInput',
  '--raw-input': 'rawInput',
  '--seq': 'seq',
  '--strict': 'strict',
  '-e': 'exitStatus',
  '--exit-status': 'exitStatus',
  '--with-file': 'withFile',
  '--allow-damage': 'allowDamage',
  '--ancestry': 'ancestry',
  '-h': 'help',
  '--help': 'help',
  '-C': 'color',
  '--color-output': 'color',
  '-M': 'mono',
  '--monochrome-output': 'mono',
  '-S': 'jq:-S',
  '--sort-keys': 'jq:-S',
  '--tab': 'jq:--tab',
  '-a': 'jq:-a',
  '--ascii-output': 'jq:-a',
  '-j': 'jq:-j',
  '--join-output': 'jq:-j',
};

/** The help text's list of flags (every flag parseQueryArgs takes). */
export const QUERY_FLAGS_HELP = `
Options (as in jq):
  -s, --slurp              all inputs as one array
  -c, --compact-output     one result per line
  -r, --raw-output         strings without quotes
  -j, --join-output        like -r, without a newline after each result
  -a, --ascii-output       non-ASCII characters as \\uXXXX
  -S, --sort-keys          object keys sorted
  --tab                    indent with a tab
  --indent N               indent with N spaces (0 to 7; default 2)
  -C, --color-output       colour (the default when stdout is a terminal and NO_COLOR is unset)
  -M, --monochrome-output  no colour
  --seq                    an ASCII RS before each result
  -n, --null-input         run once on null; read inputs with input/inputs
  -R, --raw-input          each line is a string input (with -s: the whole text as one string)
  -e, --exit-status        exit 1 if the last result is false or null, 4 if there was none
  -f, --from-file FILE     the filter is in FILE (then every argument is an input file)
  --arg NAME VALUE         $NAME is the string VALUE
  --argjson NAME JSON      $NAME is the JSON value
  --slurpfile NAME FILE    $NAME is an array of the JSON texts in FILE
  --rawfile NAME FILE      $NAME is FILE's text
  --args                   the arguments after the filter are strings in $ARGS.positional
  --jsonargs               the arguments after the filter are JSON texts in $ARGS.positional
rowlog's own:
  --strict                 stop at a line that is not JSON, as jq does (exit 2); by default bad
                           lines are skipped and counted on stderr
  --with-file              add "$file" (the input's name) to each row
  --allow-damage           a damaged gzip member is skipped and said, without exit status 1
  --ancestry               a table file of a resumed run: its ancestors' rows first, the child's
                           winning where a step repeats (README "Resuming a run: ancestry")
Inputs: .jsonl, .json, gzip (by its bytes) and .csv files, - for stdin; none: stdin unless it
is a terminal. Exit status as jq 1.7: 2 usage or unreadable file, 3 compile error, 5 runtime
error, -e's 1 and 4, halt_error's own.`;

/** jq-style arguments; throws UsageError. */
export function parseQueryArgs(argv: string[], stdinIsTTY: boolean): QueryArgs {
  const flags: Partial<Record<Flag, boolean>> = {};
  const args: Record<string, string> = {};
  const jsonArgs: Record<string, string> = {};
  const jqFlags: string[] = [];
  const positional: string[] = [];
  const slurpFiles: Array<[string, string]> = [];
  const rawFiles: Array<[string, string]> = [];
  let filter: string | undefined;
  let filterFile: string | undefined;
  let positionalMode: 'files' | 'args' | 'jsonargs' = 'files';
  const files: string[] = [];
  let withFile = false;
  let allowDamage = false;
  let ancestry = false;
  let exitStatus = false;
  let color: boolean | undefined;
  let help = false;

  const take = (word: string) => {
    if (filter === undefined && filterFile === undefined) filter = word;
    else if (positionalMode === 'files') files.push(word);
    else if (positionalMode === 'args') positional.push(JSON.stringify(word));
    else {
      try {
        JSON.parse(word);
      } catch {
        throw new UsageError(`--jsonargs: invalid JSON text passed to --jsonargs: ${word}`);
      }
      positional.push(word);
    }
  };
  const set = (key: (typeof SWITCH)[string]) => {
    if (key === 'exitStatus') exitStatus = true;
    else if (key === 'withFile') withFile = true;
    else if (key === 'allowDamage') allowDamage = true;
    else if (key === 'ancestry') ancestry = true;
    else if (key === 'help') help = true;
    else if (key === 'color') color = true;
    else if (key === 'mono') color = false;
    else if (key.startsWith('jq:')) jqFlags.push(key.slice(3));
    else flags[key as Flag] = true;
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const need = (n: number, what: string): string[] => {
      const vals = argv.slice(i + 1, i + 1 + n);
      if (vals.length < n) throw new UsageError(`option '${a}' needs ${what}`);
      i += n;
      return vals;
    };
    if (a === '--') {
      for (const w of argv.slice(i + 1)) take(w);
      break;
    } else if (a === '--arg' || a === '--argjson') {
      const [name, value] = need(2, 'NAME and VALUE') as [string, string];
      if (a === '--argjson') {
        try {
          JSON.parse(value);
        } catch {
          throw new UsageError(`--argjson ${name}: must be JSON text (got ${value})`);
        }
        jsonArgs[name] = value;
      } else args[name] = value;
    } else if (a === '--slurpfile' || a === '--rawfile') {
      const [name, file] = need(2, 'NAME and FILE') as [string, string];
      (a === '--slurpfile' ? slurpFiles : rawFiles).push([name, file]);
    } else if (a === '--indent') {
      const [n] = need(1, 'a number') as [string];
      if (!/^\d+$/.test(n) || Number(n) > 7) throw new UsageError('--indent takes a number from 0 to 7');
      jqFlags.push('--indent', n);
    } else if (a === '-f' || a === '--from-file') {
      [filterFile] = need(1, 'FILE') as [string];
      if (filter !== undefined) {
        // jq: with -f, a word taken as the filter before it was the first input file.
        files.unshift(filter);
        filter = undefined;
      }
    } else if (a === '-L' || a.startsWith('-L')) {
      throw new UsageError("-L (module directories) is not supported: jq-web has no file system for modules; paste the module's defs into the filter");
    } else if (a === '--args') {
      positionalMode = 'args';
    } else if (a === '--jsonargs') {
      positionalMode = 'jsonargs';
    } else if (SWITCH[a] !== undefined) {
      set(SWITCH[a]);
    } else if (/^-[a-zA-Z]{2,}$/.test(a)) {
      // Combined short flags: -sc, -rn; an `f` among them takes the next word.
      for (const c of a.slice(1)) {
        if (c === 'f') {
          [filterFile] = need(1, 'FILE') as [string];
          continue;
        }
        const key = SWITCH[`-${c}`];
        if (key === undefined) throw new UsageError(`unknown option '-${c}'`);
        set(key);
      }
    } else if (a.startsWith('-') && a !== '-') {
      throw new UsageError(`unknown option '${a}'`);
    } else {
      take(a);
    }
  }
  if (help) return { filter: '', files: [], opts: {}, withFile, allowDamage, ancestry, exitStatus, color, slurpFiles, rawFiles, help };
  if (filterFile !== undefined) {
    if (filter !== undefined) files.unshift(filter);
    try {
      filter = fs.readFileSync(filterFile, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the filter file ${filterFile}: ${(err as Error).message}`);
    }
  }
  if (filter === undefined) throw new UsageError('missing FILTER');
  if (files.length === 0) {
    if (flags.nullInput !== true && stdinIsTTY) throw new UsageError('missing FILE (use - for stdin)');
    // -n without input/inputs reads nothing: a script's open stdin must not hold it up.
    const reads = flags.nullInput !== true || /\binputs?\b/.test(filter);
    if (!stdinIsTTY && reads) files.push('-');
  }
  if (jqFlags.includes('-j')) flags.raw = true;
  const opts: QueryOptions = { ...flags, compact: flags.compact === true, args, jsonArgs, jqFlags, positionalArgs: positional };
  return { filter, files, opts, withFile, allowDamage, ancestry, exitStatus, color, slurpFiles, rawFiles, help };
}
