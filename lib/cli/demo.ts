/**
 * `rowlog demo` (`npm run demo`): a small, real training loop, the way rowlog is meant to be
 * used. A two-layer network (2 → hidden → 2, tanh, softmax) learns to separate two
 * interleaved spirals with minibatch SGD, in plain TypeScript on Float64Arrays. Every gradient
 * step logs its locals (loss, learning rate, the weight and gradient arrays) at TRACE, each
 * epoch one row at INFO (shown on the console, throttled), and the final evaluation one row at
 * RESULTS. Then it prints the run folder, its tables with row counts, and how to read them back.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises';
import { readWholeLines } from '../io/bgzf-file.js';
import { createLogger } from '../log/logger.js';
import { scanTables, tableFile } from '../run/layout.js';
import { defaultRunDir } from '../run/run-dir.js';
import { countArg, portArg, positiveArg } from './args.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Run folder. @default runs/demo_<time> */
  dir?: string | undefined;
  /** Epochs to train (16 steps each). @default 300 */
  epochs?: number;
  /** Print only the summary. @default false */
  quiet?: boolean;
  /** Serve every row to live subscribers on this port (`rowlog serve --connect 127.0.0.1:PORT`). @default none */
  socket?: number | undefined;
  /** Pause after each epoch (ms), so a run lasts long enough to watch. @default 0 */
  pace?: number;
  /** Where to print. @default process.stdout */
  out?: NodeJS.WritableStream;
}

/** Seeded PRNG (mulberry32), so every demo run trains the same way. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Two interleaved spirals with a little noise: n points per class. */
function spirals(n: number, random: () => number): { x: Float64Array; y: Uint8Array } {
  const x = new Float64Array(4 * n);
  const y = new Uint8Array(2 * n);
  for (let c = 0; c < 2; c++) {
    for (let i = 0; i < n; i++) {
      const r = (i / n) * 1.0 + 0.05;
      const t = (i / n) * 6 + c * Math.PI + (random() - 0.5) * 0.3;
      const k = c * n + i;
      x[2 * k] = r * Math.sin(t);
      x[2 * k + 1] = r * Math.cos(t);
      y[k] = c;
    }
  }
  return { x, y };
}

/** The network's parameters (row-major weights). */
interface Params {
  W1: Float64Array; // hidden × 2
  b1: Float64Array; // hidden
  W2: Float64Array; // 2 × hidden
  b2: Float64Array; // 2
}

/** Forward pass on `idx` rows of `x`; returns the mean loss, the accuracy and, with `grads`, fills them. */
function step(p: Params, hidden: number, x: Float64Array, y: Uint8Array, idx: ArrayLike<number>, grads?: Params): { loss: number; acc: number } {
  const h = new Float64Array(hidden);
  let loss = 0;
  let correct = 0;
  const n = idx.length;
  for (let s = 0; s < n; s++) {
    const k = idx[s] as number;
    const x0 = x[2 * k] as number;
    const x1 = x[2 * k + 1] as number;
    for (let j = 0; j < hidden; j++) h[j] = Math.tanh((p.W1[2 * j] as number) * x0 + (p.W1[2 * j + 1] as number) * x1 + (p.b1[j] as number));
    const z = [p.b2[0] as number, p.b2[1] as number];
    for (let c = 0; c < 2; c++) for (let j = 0; j < hidden; j++) z[c] = (z[c] as number) + (p.W2[c * hidden + j] as number) * (h[j] as number);
    const m = Math.max(z[0] as number, z[1] as number);
    const e0 = Math.exp((z[0] as number) - m);
    const e1 = Math.exp((z[1] as number) - m);
    const prob = [e0 / (e0 + e1), e1 / (e0 + e1)];
    const label = y[k] as number;
    loss -= Math.log(Math.max(prob[label] as number, 1e-12));
    if ((prob[1] as number) > 0.5 === (label === 1)) correct++;
    if (grads === undefined) continue;
    // Backward: dz = prob - onehot; dh = W2ᵀ dz; through tanh.
    for (let c = 0; c < 2; c++) {
      const dz = ((prob[c] as number) - (c === label ? 1 : 0)) / n;
      grads.b2[c] = (grads.b2[c] as number) + dz;
      for (let j = 0; j < hidden; j++) grads.W2[c * hidden + j] = (grads.W2[c * hidden + j] as number) + dz * (h[j] as number);
    }
    for (let j = 0; j < hidden; j++) {
      let dh = 0;
      for (let c = 0; c < 2; c++) dh += ((prob[c] as number) - (c === label ? 1 : 0)) / n * (p.W2[c * hidden + j] as number);
      const da = dh * (1 - (h[j] as number) ** 2);
      grads.b1[j] = (grads.b1[j] as number) + da;
      grads.W1[2 * j] = (grads.W1[2 * j] as number) + da * x0;
      grads.W1[2 * j + 1] = (grads.W1[2 * j + 1] as number) + da * x1;
    }
  }
  return { loss: loss / n, acc: correct / n };
}

function l2(...arrays: Float64Array[]): number {
  let s = 0;
  for (const a of arrays) for (const v of a) s += v * v;
  return Math.sqrt(s);
}

/** Trains, logs, and prints what was logged. Resolves with the run folder. */
export async function runDemo(opts: DemoOptions = {}): Promise<string> {
  const out = opts.out ?? process.stdout;
  const say = (s: string) => out.write(`${s}\n`);
  const epochs = opts.epochs ?? 300;
  const hidden = 32;
  const batch = 32;
  const lr0 = 0.5;
  const seed = 7;
  const random = rng(seed);
  const train = spirals(256, random);
  const test = spirals(128, random);
  const nTrain = train.y.length;

  // The default sinks: every row into <table>.jsonl.gz and <table>.csv, INFO and up on the console.
  const log = createLogger({
    dir: opts.dir ?? defaultRunDir('demo'),
    console: opts.quiet ? false : { stream: out as Writable },
    ...(opts.socket === undefined ? {} : { socket: { port: opts.socket } }),
  });
  log.params({ model: { layers: [2, hidden, 2], activation: 'tanh' }, optimizer: { name: 'sgd', lr: lr0, decay: 'cosine' }, batch, epochs, seed, data: 'two spirals, 512 train / 256 test' });

  const init = (n: number, fanIn: number) => Float64Array.from({ length: n }, () => (random() * 2 - 1) * Math.sqrt(3 / fanIn));
  const p: Params = { W1: init(hidden * 2, 2), b1: new Float64Array(hidden), W2: init(2 * hidden, hidden), b2: new Float64Array(2) };
  const order = Uint32Array.from({ length: nTrain }, (_, i) => i);
  const started = performance.now();
  let iteration = 0;
  if (!opts.quiet) say(`training a ${2}-${hidden}-2 network on two spirals for ${epochs} epochs, logging into ${log.dir}`);
  if (opts.socket !== undefined && !opts.quiet) say(`live rows on 127.0.0.1:${opts.socket} (rowlog serve --connect 127.0.0.1:${opts.socket})`);

  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let i = nTrain - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i] as number;
      order[i] = order[j] as number;
      order[j] = t;
    }
    let epochLoss = 0;
    let epochAcc = 0;
    for (let b = 0; b < nTrain / batch; b++) {
      const idx = order.subarray(b * batch, (b + 1) * batch);
      const grads: Params = { W1: new Float64Array(hidden * 2), b1: new Float64Array(hidden), W2: new Float64Array(2 * hidden), b2: new Float64Array(2) };
      const { loss, acc } = step(p, hidden, train.x, train.y, idx, grads);
      const lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * iteration) / (epochs * (nTrain / batch))));
      const gradNorm = l2(grads.W1, grads.b1, grads.W2, grads.b2);
      // Every local of the step, arrays included: rowlog summarizes W1, dW1, … into .mean/.min/.max/.std.
      log.row('grad_step', { epoch, loss, acc, lr, grad_norm: gradNorm, weights: p, grads }, { level: 'TRACE' });
      for (const k of ['W1', 'b1', 'W2', 'b2'] as const) {
        const w = p[k];
        const g = grads[k];
        for (let i = 0; i < w.length; i++) w[i] = (w[i] as number) - lr * (g[i] as number);
      }
      epochLoss += loss;
      epochAcc += acc;
      iteration++;
    }
    const steps = nTrain / batch;
    const row = { train_loss: epochLoss / steps, train_acc: epochAcc / steps, weight_norm: l2(p.W1, p.b1, p.W2, p.b2) };
    log.row('epoch', row, { level: 'INFO', step: epoch });
    log.status.epochs_done = epoch + 1;
    log.status.iterations_done = iteration;
    // A real trainer awaits data and devices; this gives the sinks (and subscribers) their turn.
    await (opts.pace ? sleep(opts.pace) : yieldLoop());
  }

  const all = Uint32Array.from({ length: test.y.length }, (_, i) => i);
  const evaluation = step(p, hidden, test.x, test.y, all);
  log.row('eval', { test_loss: evaluation.loss, test_acc: evaluation.acc, epochs, iterations: iteration }, { level: 'RESULTS' });
  log.artifact('model.json', p);
  await log.close();
  const seconds = (performance.now() - started) / 1000;

  const dir = path.relative(process.cwd(), log.dir as string) || '.';
  say('');
  say(`${iteration} steps in ${seconds.toFixed(1)} s; test accuracy ${(evaluation.acc * 100).toFixed(1)} %`);
  say(`run folder: ${dir}/`);
  const kb = (f: string) => `${(fs.statSync(path.join(log.dir as string, f)).size / 1024).toFixed(0)} KiB`;
  for (const table of scanTables(log.dir as string)) {
    const first = table.files[0];
    if (first === undefined) continue;
    const lines = readWholeLines(path.join(log.dir as string, first.file)).text.split('\n').filter((l) => l !== '');
    const cols = Object.keys(JSON.parse(lines[0] ?? '{}') as object).length;
    const rows = `${lines.length} ${lines.length === 1 ? 'row ' : 'rows'}`;
    say(`  ${table.name.padEnd(10)} ${rows.padStart(10)} ${String(cols).padStart(4)} columns   ${table.files.map((f) => `${f.file} (${kb(f.file)})`).join(', ')}`);
  }
  say(`  ${fs.readdirSync(log.dir as string).sort().filter((n) => tableFile(n) === undefined).join('  ')}`);
  say('');
  say('read it back, e.g. the loss every 500 steps (or open the .csv files in pandas):');
  say(`  zcat ${dir}/grad_step.jsonl.gz | jq -c 'select(."$step" % 500 == 0) | {step: ."$step", loss, "W1.std": ."weights/W1.std"}'`);
  say(`  tensorboard --logdir ${dir}    (the rows at INFO and above: epoch and eval)`);
  say(`  rowlog export ${dir} --to parquet    (then DuckDB: SELECT avg(loss) FROM read_parquet('${dir}/grad_step.parquet/*.parquet'))`);
  return log.dir as string;
}

/** `rowlog demo`. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('train a small network for a few seconds, logging every step into runs/, then show what was logged')
    .option('--dir <dir>', 'run folder (default: runs/demo_<time>)')
    .option('--epochs <n>', 'epochs to train', positiveArg, 300)
    .option('--quiet', 'print only the summary at the end')
    .option('--socket <port>', 'also serve the rows live on 127.0.0.1:<port>', portArg)
    .option('--pace <ms>', 'pause after each epoch, to watch the run live', countArg, 0)
    .action(async (opts: { dir?: string; epochs: number; quiet?: boolean; socket?: number; pace: number }) => {
      await runDemo({ dir: opts.dir, epochs: opts.epochs, quiet: opts.quiet === true, socket: opts.socket, pace: opts.pace });
    });
}
