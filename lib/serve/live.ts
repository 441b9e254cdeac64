/**
 * The live run of `serve({connect})`: rows of a socket sink (lib/net/connect.ts), by `$table`,
 * held in memory under the M4 rule (lib/serve/decimate.ts) for as long as the server runs, on
 * `$step` and `$time` from the first row, and on any other x-axis from when a page first asks
 * for it (the rows before are not kept); pages that follow one of its tables are told of each row.
 */
import type { Readable } from 'node:stream';
import { isValidName } from '../core/entry.js';
import { connect } from '../net/connect.js';
import { MAX_BUCKETS, TableM4, xOf } from './decimate.js';
import type { ServedRun, ServedTable, XAxis } from './protocol.js';

/** Tables a `connect` subscription may add (each holds up to MAX_BUCKETS buckets per axis). */
const MAX_LIVE_TABLES = 1000;
/** x-axes kept per live table at most (`$step`, `$time` and those pages asked for). */
const MAX_LIVE_AXES = 8;

/** One table of the live run, with the pages that follow it. */
export class LiveTable {
  total = 0;
  startTime: number | undefined;
  mtime = Date.now();
  readonly axes = new Map<XAxis, TableM4>([
    ['$step', new TableM4(MAX_BUCKETS)],
    ['$time', new TableM4(MAX_BUCKETS)],
  ]);
  readonly listeners = new Set<(row: Record<string, unknown>, index: number) => void>();

  /** The rows on `x` (from now on for an axis not asked for before); undefined past MAX_LIVE_AXES. */
  view(x: XAxis): TableM4 | undefined {
    let m4 = this.axes.get(x);
    if (m4 === undefined && this.axes.size < MAX_LIVE_AXES) this.axes.set(x, (m4 = new TableM4(MAX_BUCKETS, { origin: this.total })));
    return m4;
  }

  push(row: Record<string, unknown>): void {
    const index = this.total++;
    if (this.startTime === undefined && typeof row.$time === 'number' && row.$time - row.$time === 0) this.startTime = row.$time;
    for (const [axis, m4] of this.axes) {
      const x = xOf(row, index, axis);
      if (x !== undefined) m4.push(index, x, row);
      m4.total = this.total;
    }
    this.mtime = Date.now();
    for (const l of this.listeners) l(row, index);
  }
}

/** The rows of one socket sink, as a run named after its address. */
export class LiveRun {
  /** What the API takes as `run=`: `live:host:port`. */
  readonly id: string;
  /** `host:port` (`[::1]:port`). */
  readonly name: string;
  readonly tables = new Map<string, LiveTable>();
  private subscription: Readable | undefined;

  constructor(readonly remote: { host: string; port: number }) {
    this.id = `live:${remote.host}:${remote.port}`;
    this.name = `${remote.host.includes(':') ? `[${remote.host}]` : remote.host}:${remote.port}`;
  }

  /** The run as listed: its tables by name. */
  served(): ServedRun {
    const tables = [...this.tables.entries()]
      .map(([name, t]): ServedTable => ({ name, file: '', format: 'jsonl', size: 0, mtime: t.mtime }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    return { id: this.id, name: this.name, live: true, tables };
  }

  /** Subscribes (reconnecting while the server runs); `onTable` when a new table shows up. */
  start(token: string | undefined, onTable: () => void, warn: (message: string) => void): void {
    const where = this.name;
    const rows = connect({ host: this.remote.host, port: this.remote.port, reconnect: true, ...(token !== undefined ? { token } : {}) });
    rows.on('data', (row: Record<string, unknown>) => {
      const name = isValidName(row.$table) ? row.$table : 'main';
      let t = this.tables.get(name);
      if (t === undefined) {
        if (this.tables.size >= MAX_LIVE_TABLES) return;
        this.tables.set(name, (t = new LiveTable()));
        onTable();
      }
      t.push(row);
    });
    rows.on('dropped', (n: number) => warn(`${where}: ${n} rows were dropped by the socket sink (not sent while this server was away or slow)`));
    rows.on('restart', () => warn(`${where}: the socket sink restarted (a new trainer on that port); its rows follow the old ones`));
    rows.on('error', (err: Error) => warn(`${where}: ${err.message}`));
    this.subscription = rows;
  }

  close(): void {
    this.subscription?.destroy();
  }
}
