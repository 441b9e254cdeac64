/**
 * tensorboardSink: the rows as a TensorBoard events file (docs/DESIGN.md §4), as noko, tensorboardX
 * and PyTorch's SummaryWriter write them: one scalar per numeric column, tag `<table>/<key>`,
 * step `$step`, wall time `$time`. Values are float32 (TensorBoard's `simple_value`).
 *
 * A {@link BatchSink}: `log.row()` only keeps the Entry; the rows are encoded and written in
 * batches from the sink's timer (sinks/tensorboard-file.ts), never blocking the caller.
 */
import { numberOption, optionError } from '../lib/core/options.js';
import { DEFAULT_MAX_QUEUED_BYTES } from '../lib/io/file-writer.js';
import { BatchSink, resolveBatchOptions } from './batch-sink.js';
import type { BatchSinkOptions } from './batch-sink.js';
import { TensorboardFile } from './tensorboard-file.js';

/** Options of {@link tensorboardSink}. */
export interface TensorboardSinkOptions extends BatchSinkOptions {
  /**
   * The folder of the events file (created at the first write): the run folder, or a folder of
   * its own that `tensorboard --logdir` is pointed at. Each sink writes a new file
   * `events.out.tfevents.<unix secs>.<host>` there (`.<pid>.<n>` added when the name is taken).
   */
  dir: string;
  /** `'flush'`: fsync after each batch, for power-loss safety. @default 'none' */
  durability?: 'none' | 'flush';
  /**
   * Bound on encoded bytes waiting for the disk: past it a batch is written synchronously, so a
   * training loop that never yields slows down instead of filling memory. @default 2097152 (2 MiB)
   */
  maxQueuedBytes?: number;
}

/**
 * A sink writing a TensorBoard events file in `dir`: a first `file_version` event, then one event
 * per row with a numeric or boolean column (booleans 1/0; strings and nulls are left out; NaN and
 * ±Infinity kept), values rounded to float32. Throws `ERR_INVALID_OPTION` for a bad option.
 */
export function tensorboardSink(opts: TensorboardSinkOptions): BatchSink {
  const batch = resolveBatchOptions(opts);
  if (typeof opts.dir !== 'string' || opts.dir === '') {
    throw optionError('type', 'dir', `must be a non-empty string (got ${String(opts.dir)})`);
  }
  const durability = opts.durability ?? 'none';
  if (durability !== 'none' && durability !== 'flush') {
    throw optionError('range', 'durability', `must be 'none' or 'flush' (got ${String(durability)})`);
  }
  const dir = opts.dir;
  const maxQueuedBytes = numberOption(opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES, 'maxQueuedBytes', { min: 0 });
  return new BatchSink(opts, (warn) => new TensorboardFile({ dir, fsync: durability === 'flush', maxQueuedRows: batch.maxQueuedRows, maxQueuedBytes }, warn));
}
