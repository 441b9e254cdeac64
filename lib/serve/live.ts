/**
 * The live run of `serve({connect})`: rows of a socket sink (lib/net/connect.ts), by `$table`,
 * held in memory and strided like a snapshot (lib/serve/decimate.ts) for as long as the server
 * runs; pages that follow one of its tables are told of each row.
 */
import type { Readable } from 'node:stream';
import { isValidName } from '../core/entry.js';
import { connect } from '../net/connect.js';
import { Decimator, numericRow } from './decimate.js';
import type { NumRow } from './decimate.js';
import type { ServedRun, ServedTable } from './protocol.js';

/** Tables a `connect` subscription may add (each holds up to `maxPoints` rows). */
const MAX_LIVE_TABLES = 1000;

/** One table of the live run, with the pages that follow it. */
export class LiveTable {
  readonly dec: Decimator;
  mtime = Date.now();
  readonly listeners = new Set<(row: NumRow, index: number) => void>();
  constructor(max: number) {
    this.dec = new Decimator(max);
  }
  push(row: NumRow): void {
    this.dec.push(row);
    this.mtime = Date.now();
    for (const l of this.listeners) l(row, this.dec.total - 1);
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

  constructor(
    readonly remote: { host: string; port: number },
    readonly maxPoints: number,
  ) {
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
        this.tables.set(name, (t = new LiveTable(this.maxPoints)));
        onTable();
      }
      t.push(numericRow(row, t.dec.total));
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
