/**
 * serve's background warming (docs/DESIGN.md §7, issue 15 §5): every table file of the listing
 * read once into the {@link TableCache} soon after serve starts, most recently changed first, so
 * that the runs table's figures (and the first charts of the latest runs) are there when a page
 * asks, without a page waiting for 100 reads. The cache runs them one at a time, only while no
 * page waits for a read, and keeps the points of those that fit its budget.
 */
import type { RunListing } from './runs.js';
import type { TableCache } from './table-cache.js';

/** Queues a background read of every listed table file (not the live run's, not Redis's), most recently changed first. */
export function warmTables(listing: RunListing, cache: TableCache): void {
  const files: Array<{ file: string; mtime: number }> = [];
  for (const run of listing.runs()) {
    if (run.live || run.source !== undefined) continue;
    for (const t of run.tables) {
      try {
        files.push({ file: listing.resolve(run.id, t.name).file, mtime: t.mtime });
      } catch {
        // gone since it was listed
      }
    }
  }
  files.sort((a, b) => b.mtime - a.mtime);
  cache.warm(files.map((f) => f.file));
}
