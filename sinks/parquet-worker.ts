/**
 * The Parquet sink's worker thread (sinks/parquet.ts, docs/DESIGN.md §5): each job is a closed
 * part's columns; it is encoded (lib/format/parquet-encode.ts) and written whole as the next part
 * of its table's dataset (lib/io/parquet-dataset.ts), in the order the parts were closed. A
 * failing write throws, so the main thread is told the job's number and counts its rows lost;
 * the part number is not used up, and the folder is opened again by the next part.
 */
import { encodePart } from '../lib/format/parquet-encode.js';
import type { EncodeOptions } from '../lib/format/parquet-encode.js';
import type { PartJob } from '../lib/format/parquet-part.js';
import { datasetPath, openDataset, writePart } from '../lib/io/parquet-dataset.js';
import { serveJobs } from '../lib/io/worker-channel.js';

/** What the sink gives its worker. */
export interface ParquetWorkerInit extends EncodeOptions {
  readonly dir: string;
  readonly fsync: boolean;
}

/** Each table's next part number, once its folder was opened. */
const next = new Map<string, number>();

const init = serveJobs<PartJob>((part) => {
  const folder = datasetPath(init.dir, part.table);
  const n = next.get(part.table) ?? openDataset(folder);
  next.set(part.table, n);
  const bytes = encodePart(part, init);
  try {
    writePart(folder, n, bytes, init.fsync);
  } catch (err) {
    next.delete(part.table); // the folder may be gone: opened again by the next part
    throw err;
  }
  next.set(part.table, n + 1);
}) as ParquetWorkerInit;
