/**
 * Why a long-running command watches its parent: `npx rowlog serve` is three processes,
 * `npm exec` → `sh -c rowlog …` → `node …/rowlog serve`. A SIGTERM to npm (what a process
 * manager, a terminal multiplexer or `kill` sends) is forwarded by npm to its child, the shell,
 * which dies without passing it on (dash neither forwards signals nor execs its command), and
 * node, reparented to init, goes on holding its port. Ctrl-C works only because the terminal
 * signals the whole process group.
 *
 * So a command started through npm (`npm_execpath` is set: `npx`, `npm exec`, `npm run`) polls
 * its parent pid, which the kernel changes when the parent dies, and stops as on SIGTERM.
 * Started any other way (a shell, `nohup … &`, a service manager) it does not watch: outliving
 * the shell that started it may be what the user wants there.
 */

/** How often the parent pid is read. */
const POLL_MS = 500;

/** What {@link parentGone} watches for. */
export interface ParentWatch {
  /** Resolves when the parent process has gone (never, when not watching). */
  gone: Promise<void>;
  /** Stops watching. */
  cancel(): void;
}

/**
 * Watches for the death of the process that started this one, when it is a package-manager
 * wrapper (see the module comment) or `always`. The timer does not keep the process alive.
 */
export function parentGone(opts: { always?: boolean; pollMs?: number } = {}): ParentWatch {
  const first = process.ppid;
  let timer: NodeJS.Timeout | undefined;
  const gone = new Promise<void>((resolve) => {
    if (!(opts.always === true || process.env.npm_execpath !== undefined) || first <= 1) return;
    timer = setInterval(() => {
      if (process.ppid === first) return;
      clearInterval(timer);
      resolve();
    }, opts.pollMs ?? POLL_MS);
    timer.unref();
  });
  return { gone, cancel: () => clearInterval(timer) };
}
