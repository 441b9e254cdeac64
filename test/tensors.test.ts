/**
 * Framework tensors and models (docs/DESIGN.md §3, transforms/tensors.ts) with the REAL packages:
 * tfjs-core on the CPU backend (tensors of every dtype, a disposed tensor, tf.variable), a
 * tfjs-layers `tf.sequential()` model of two dense layers with real gradients (tf.variableGrads
 * and optimizer.computeGradients), strided ndarray views (transpose, hi/lo, step(-1)), and
 * onnxruntime-common Tensors (onnxruntime-web/-node's Tensor class). Every statistic is checked
 * against a float64 two-pass reference computed here, through `summarizeRow` (helpers' `flat`)
 * and through a logger's memory sink (the keys a user sees).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import ndarray from 'ndarray';
import { Tensor as OrtTensor } from 'onnxruntime-common';
import t from 'tap';
import type { Test } from 'tap';
import { createLogger } from '../lib/log/logger.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { memorySink } from '../sinks/memory.js';
import type { SummarizeRowOptions } from '../transforms/summarize.js';
import { withGrads } from '../transforms/tensors.js';
import type { LayersModelLike } from '../transforms/tensors.js';
import { flat } from './helpers.js';

// tfjs documents prod mode as the switch for its debug checks and messages: without it the CPU
// backend prints "Hi, looks like you are running TensorFlow.js in Node.js …" on first use.
tf.enableProdMode();
await tf.setBackend('cpu');

/** mean, min, max, population std in float64, two passes: the yardstick. */
function reference(values: ArrayLike<number>): { mean: number; min: number; max: number; std: number } {
  const xs = Array.from(values, Number);
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
  return { mean, min: Math.min(...xs), max: Math.max(...xs), std };
}

const close = (a: unknown, b: number) => typeof a === 'number' && (a === b || Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)));

/** Asserts `row` has `key.mean/min/max/std` matching the reference of `values`. */
function statsOf(t: Test, row: Record<string, unknown>, key: string, values: ArrayLike<number>): void {
  const r = reference(values);
  for (const s of ['mean', 'min', 'max', 'std'] as const) t.ok(close(row[`${key}.${s}`], r[s]), `${key}.${s}: ${String(row[`${key}.${s}`])} ≈ ${r[s]}`);
}

const values = (n: number, f: (i: number) => number) => Float64Array.from({ length: n }, (_, i) => f(i));

// ---------------------------------------------------------------------------------------
// TensorFlow.js tensors

t.test('tfjs tensors of every numeric dtype: the statistics of their values', async (t) => {
  const f = tf.tensor2d(Float32Array.from(values(12, (i) => Math.sin(i) * 3)), [3, 4], 'float32');
  const i32 = tf.tensor1d([5, -2, 7, 0, 11], 'int32');
  const b = tf.tensor1d([true, false, true, true], 'bool');
  const one = tf.scalar(4.5);
  const v = tf.variable(tf.tensor1d([1, 2, 3, 10]));
  const { row, warnings } = flat({ f, i32, b, one, v });
  statsOf(t, row, 'f', f.dataSync());
  statsOf(t, row, 'i32', [5, -2, 7, 0, 11]);
  statsOf(t, row, 'b', [1, 0, 1, 1]);
  t.equal(row['b.mean'], 0.75, 'a bool tensor: mean = the fraction of true');
  t.equal(row.one, 4.5, 'a one-element tensor is its value');
  statsOf(t, row, 'v', [1, 2, 3, 10]);
  t.strictSame(warnings, []);
  tf.dispose([f, i32, b, one, v]);
});

t.test('complex64: the real and imaginary parts apart, read with stride 2 from the interleaved data', async (t) => {
  const re = [1, -2, 3.5, 8];
  const im = [0.5, 4, -1, 2];
  const c = tf.complex(re, im);
  const { row } = flat({ c, c1: tf.complex([2], [-3]) });
  statsOf(t, row, 'c/re', re);
  statsOf(t, row, 'c/im', im);
  t.equal(row['c1/re'], 2);
  t.equal(row['c1/im'], -3);
  t.notOk('c.mean' in row, 'no statistics of the interleaved numbers');
});

t.test('a string tensor is kept per item, like a string array', async (t) => {
  const s = tf.tensor1d(['cat', 'dog']);
  t.strictSame(flat({ s }).row, { 's/0': 'cat', 's/1': 'dog' });
  const long = tf.tensor1d(Array.from({ length: 20 }, (_, i) => `w${i}`));
  const { row, warnings } = flat({ long });
  t.equal(Object.keys(row).length, 16);
  t.equal(warnings[0]?.code, 'W_ARRAY_CUT');
});

t.test('a disposed tensor is skipped with one warning (W_DISPOSED), never a throw', async (t) => {
  const gone = tf.tensor1d([1, 2, 3]);
  gone.dispose();
  const { row, warnings } = flat({ loss: 0.5, gone });
  t.strictSame(row, { loss: 0.5 });
  t.strictSame(warnings, [{ code: 'W_DISPOSED', key: 'gone', message: "'gone' is a disposed tensor and was skipped" }]);
});

// ---------------------------------------------------------------------------------------
// TensorFlow.js layers: a model, its weights and gradients

/** A real two-layer dense model, its input and targets. */
function denseModel() {
  const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 4, inputShape: [3], activation: 'relu', biasInitializer: 'randomNormal' }), tfl.layers.dense({ units: 2 })] });
  const x = tf.tensor2d(Float32Array.from(values(15, (i) => Math.cos(i * 1.3))), [5, 3]);
  const y = tf.tensor2d(Float32Array.from(values(10, (i) => i / 10)), [5, 2]);
  const loss = () => tf.losses.meanSquaredError(y, model.predict(x) as tf.Tensor) as tf.Scalar;
  return { model, loss, dispose: () => tf.dispose([x, y]) };
}

t.test('a LayersModel: every weight as <name>.mean/min/max/std under the model key', async (t) => {
  const { model, dispose } = denseModel();
  const names = model.weights.map((w) => w.name);
  t.equal(names.length, 4, 'two dense layers: two kernels, two biases');
  const { row, warnings } = flat({ step: 3, model });
  t.strictSame(warnings, []);
  t.strictSame(Object.keys(row), ['step', ...names.flatMap((n) => ['mean', 'min', 'max', 'std'].map((s) => `model/${n}.${s}`))]);
  for (const w of model.weights) statsOf(t, row, `model/${w.name}`, w.read().dataSync());
  t.match(names[0], /^dense_\w+\/kernel$/, 'names as tfjs gives them, e.g. dense_Dense1/kernel');
  // A LayerVariable alone is its values; a model at the root writes its weights at the root.
  const w0 = model.weights[0] as tfl.LayerVariable;
  statsOf(t, flat({ w: w0 }).row, 'w', w0.read().dataSync());
  statsOf(t, flat(model).row, w0.name, w0.read().dataSync());
  model.dispose();
  dispose();
});

t.test('withGrads(model, grads): the gradients of tf.variableGrads under <key>/grad/<name>', async (t) => {
  const { model, loss, dispose } = denseModel();
  const { value, grads } = tf.variableGrads(loss);
  const { row, warnings } = flat({ loss: value.dataSync()[0], net: withGrads(model, grads) });
  t.strictSame(warnings, []);
  for (const w of model.weights) {
    statsOf(t, row, `net/${w.name}`, w.read().dataSync());
    statsOf(t, row, `net/grad/${w.name}`, (grads[w.name] as tf.Tensor).dataSync());
  }
  const keys = Object.keys(row);
  const first = model.weights[0]?.name as string;
  t.equal(keys.indexOf(`net/grad/${first}.mean`), keys.indexOf(`net/${first}.std`) + 1, "each weight's gradient follows it, as noko's .grad does");
  t.ok(keys.every((k) => k === 'loss' || k.startsWith('net/')));
  // The plain row {model, grads} needs no helper: the model's weights and the map of tensors.
  const plain = flat({ model, grads }).row;
  statsOf(t, plain, `grads/${first}`, (grads[first] as tf.Tensor).dataSync());
  statsOf(t, plain, `model/${first}`, (model.weights[0] as tfl.LayerVariable).read().dataSync());
  tf.dispose([value, ...Object.values(grads)]);
  model.dispose();
  dispose();
});

t.test('withGrads with optimizer.computeGradients, a gradient of no weight, and a disposed model', async (t) => {
  const { model, loss, dispose } = denseModel();
  const optimizer = tf.train.sgd(0.1);
  const { value, grads } = optimizer.computeGradients(loss);
  const { row } = flat({ m: withGrads(model, { ...grads, extra: tf.tensor1d([1, 3]) }) });
  for (const name of Object.keys(grads)) statsOf(t, row, `m/grad/${name}`, (grads[name] as tf.Tensor).dataSync());
  t.equal(row['m/grad/extra.mean'], 2, 'a gradient named like no weight is written after the weights');
  t.equal(Object.keys(row).at(-1), 'm/grad/extra.std');
  tf.dispose([value, ...Object.values(grads)]);
  model.dispose();
  const after = flat({ m: model });
  t.strictSame(after.row, {});
  t.strictSame(
    after.warnings.map((w) => w.code),
    ['W_DISPOSED', 'W_DISPOSED', 'W_DISPOSED', 'W_DISPOSED'],
    'each disposed weight is skipped with a warning',
  );
  dispose();
});

t.test('withGrads: bad arguments are option errors', async (t) => {
  t.throws(() => withGrads({} as never, {}), { code: 'ERR_INVALID_OPTION', message: /^withGrads model/ });
  t.throws(() => withGrads(null as never, {}), { code: 'ERR_INVALID_OPTION', message: /^withGrads model/ });
  const { model } = denseModel();
  t.throws(() => withGrads(model, undefined as never), { code: 'ERR_INVALID_OPTION', message: /^withGrads grads/ });
  const fake: LayersModelLike = { weights: 'no' as never, layers: [], getWeights: () => [] };
  t.strictSame(flat({ m: withGrads(fake, {}) }).warnings.map((w) => w.code), ['W_THREW']);
  t.strictSame(flat(withGrads(fake, {})).warnings.map((w) => w.key), ['value'], 'at the root');
  const unnamed: LayersModelLike = { weights: [Float32Array.of(1, 3)], layers: [], getWeights: () => [] };
  t.strictSame(flat({ m: withGrads(unnamed, {}) }).row, { 'm/0.mean': 2, 'm/0.min': 1, 'm/0.max': 3, 'm/0.std': 1 }, 'a weight without a name: its index');
  model.dispose();
});

t.test('look-alikes: a LayerVariable whose read() throws, and a class instance that is no framework value', async (t) => {
  class BadVariable {
    originalName = 'w';
    read(): never {
      throw new Error('lost');
    }
  }
  class Point {
    x = 1;
    y = 2;
  }
  class Image {
    dims = [2, 2];
    type = 'png';
    size = 4;
  }
  const { row, warnings } = flat({ w: new BadVariable(), p: new Point(), img: new Image() });
  t.strictSame(row, { 'p/x': 1, 'p/y': 2, 'img/dims.mean': 2, 'img/dims.min': 2, 'img/dims.max': 2, 'img/dims.std': 0, 'img/type': 'png', 'img/size': 4 }, 'dims, type and size without data: an ordinary object');
  t.strictSame(warnings, [{ code: 'W_THREW', key: 'w', message: "read() of 'w' threw (lost); the key was skipped" }]);
});

t.test('a class whose getter of a framework name throws is walked as any object, as before tensors were recognised', async (t) => {
  class Lazy {
    x = 1;
    get shape(): never {
      throw new Error('not built yet');
    }
  }
  class Handle {
    id = 7;
    get dims(): never {
      throw new Error('closed');
    }
  }
  const { row, warnings } = flat({ a: new Lazy(), b: new Handle() });
  t.strictSame(row, { 'a/x': 1, 'b/id': 7 }, 'its own keys, as e32ff88 wrote them');
  t.strictSame(warnings, [], 'a prototype getter is not read by the walk, so nothing threw');
});

// ---------------------------------------------------------------------------------------
// ndarray views

/** The elements of an ndarray view in row-major order, read one by one through its own get(). */
function elements(v: ndarray.NdArray): number[] {
  const out: number[] = [];
  const idx = v.shape.map(() => 0);
  if (v.size === 0) return out;
  for (;;) {
    out.push(v.get(...idx));
    let k = idx.length - 1;
    while (k >= 0 && ++(idx[k] as number) === v.shape[k]) idx[k--] = 0;
    if (k < 0) return out;
  }
}

t.test('ndarray views: statistics over exactly the elements of the view, in place', async (t) => {
  const base = ndarray(values(60, (i) => Math.sin(i) * 10 + i / 7), [5, 12]);
  const views: Record<string, ndarray.NdArray> = {
    whole: base,
    transposed: base.transpose(1, 0),
    sliced: base.hi(4, 9).lo(1, 2),
    reversed: base.step(-1),
    stepped: base.step(2, -3),
    column: base.pick(null, 5),
    cube: ndarray(values(24, (i) => i * i - 40), [2, 3, 4]).transpose(2, 0, 1).step(-1, 1, -1),
    fourD: ndarray(values(120, (i) => Math.cos(i) * i), [2, 3, 4, 5]).transpose(3, 1, 0, 2).step(1, -1, 1, 2),
    fiveD: ndarray(values(64, (i) => i % 7), [2, 2, 2, 2, 4]).transpose(4, 3, 2, 1, 0),
  };
  const { row, warnings } = flat(views);
  t.strictSame(warnings, []);
  for (const [name, v] of Object.entries(views)) statsOf(t, row, name, elements(v));
  // The same bits as the plain path: a contiguous view is the array, a strided one its row-major copy.
  for (const [name, v] of Object.entries(views)) {
    t.strictSame(flat({ [name]: Float64Array.from(elements(v)) }).row, Object.fromEntries(Object.entries(row).filter(([k]) => k.startsWith(`${name}.`))), `${name}: same bits as its copy`);
  }
  t.strictSame(flat({ x: base }, { stats: ['norm', 'len', 'nonfinite'] }).row, flat({ x: base.data }, { stats: ['norm', 'len', 'nonfinite'] }).row);
});

t.test('ndarray views with NaN, ±Infinity, huge and tiny values: every stat, the bits of their copies', async (t) => {
  const all: SummarizeRowOptions = { stats: ['mean', 'min', 'max', 'std', 'norm', 'len', 'nonfinite'] };
  const cases = {
    nonfinite: values(24, (i) => (i === 7 ? NaN : i === 13 ? Infinity : i === 2 ? -Infinity : i)),
    infinite: values(24, (i) => (i === 5 ? Infinity : i - 3)),
    huge: values(24, (i) => (i % 2 ? 1.7e308 : -1.6e308 + i)),
    tiny: values(24, (i) => (i + 1) * 1e-200),
  };
  for (const [name, data] of Object.entries(cases)) {
    const view = ndarray(data, [2, 3, 2, 2]).transpose(1, 3, 0, 2).step(-1, 1, 1, -1);
    const copy = Float64Array.from(elements(view));
    t.strictSame(flat({ x: view }, all).row, flat({ x: copy }, all).row, name);
  }
  t.equal(flat({ x: ndarray(cases.huge, [4, 6]).transpose(1, 0) }).row['x.max'], 1.7e308);
});

t.test('ndarray edge cases: one element, none, Float32/Int32/BigInt data, non-numeric data, a view outside its data', async (t) => {
  const base = ndarray(Float32Array.from([1, 2, 3, 4]), [2, 2]);
  t.strictSame(flat({ one: base.pick(1, 0), none: base.hi(0, 2), zero: ndarray([7], []) }).row, { one: 3, zero: 7 });
  statsOf(t, flat({ i: ndarray(Int32Array.from([4, -4, 9, 1]), [2, 2]).transpose(1, 0) }).row, 'i', [4, 9, -4, 1]);
  const big = ndarray(BigInt64Array.from([1n, 2n, 3n, 2n ** 60n]), [2, 2]).transpose(1, 0);
  statsOf(t, flat({ big }).row, 'big', [1, 3, 2, 2 ** 60]);
  t.equal(flat({ b1: ndarray(BigInt64Array.from([5n]), [1]) }).row.b1, 5);
  statsOf(t, flat({ arr: ndarray([1, 5, 2, 8], [2, 2]).step(-1, -1) }).row, 'arr', [8, 2, 5, 1]);
  const strings = flat({ s: ndarray(['a', 'b'], [2]) });
  t.strictSame(strings.row, {});
  t.equal(strings.warnings[0]?.code, 'W_NOT_NUMERIC');
  const outside = flat({ v: ndarray(new Float64Array(4), [4], [1], 2) });
  t.strictSame(outside.row, {});
  t.equal(outside.warnings[0]?.code, 'W_BAD_VIEW');
  // ndarray itself truncates offsets (d|0); a look-alike class need not.
  class View {
    data = new Float64Array(4);
    shape = [2];
    stride = [1];
    offset = 1.5;
  }
  t.equal(flat({ v: new View() }).warnings[0]?.code, 'W_BAD_VIEW', 'a fractional offset');
  class NoOffset {
    data = [1, 2, 4];
    shape = [3];
    stride = [1];
  }
  t.strictSame(flat({ v: new NoOffset() }, { stats: ['mean'] }).row, { 'v.mean': 7 / 3 }, 'no offset: 0');
  t.equal(flat({ v: ndarray(new Float64Array(4), [2], [-1], 0) }).warnings[0]?.code, 'W_BAD_VIEW', 'a negative stride that leaves the data');
});

// ---------------------------------------------------------------------------------------
// onnxruntime tensors

t.test('onnxruntime Tensors: float32, int64 (BigInt64Array → numbers), uint64, bool, float16, string', async (t) => {
  const f = new OrtTensor('float32', Float32Array.from(values(6, (i) => i * 1.5 - 2)), [2, 3]);
  const i64 = new OrtTensor('int64', BigInt64Array.from([-5n, 10n, 2n ** 62n, 0n]), [4]);
  const u64 = new OrtTensor('uint64', BigUint64Array.from([1n, 2n, 3n]), [3]);
  const b = new OrtTensor('bool', Uint8Array.from([1, 0, 0, 1, 1]), [5]);
  // 1, -2, 0.5, Infinity as IEEE half bits (onnxruntime's float16 is a Uint16Array without Float16Array).
  const h = new OrtTensor('float16', Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x0001]), [4]);
  const s = new OrtTensor('string', ['x', 'y'], [2]);
  const one = new OrtTensor('float32', Float32Array.of(7), [1, 1]);
  const { row, warnings } = flat({ f, i64, u64, b, h, s, one });
  t.strictSame(warnings, []);
  statsOf(t, row, 'f', f.data as Float32Array);
  statsOf(t, row, 'i64', [-5, 10, 2 ** 62, 0]);
  statsOf(t, row, 'u64', [1, 2, 3]);
  statsOf(t, row, 'b', [1, 0, 0, 1, 1]);
  statsOf(t, row, 'h', [1, -2, 0.5, 2 ** -24]);
  t.equal(row['s/0'], 'x');
  t.equal(row['s/1'], 'y');
  t.equal(row.one, 7);
  const inf = flat({ h: new OrtTensor('float16', Uint16Array.from([0x7c00, 0xfc00, 0x7e00]), [3]) }, { stats: ['nonfinite', 'max'] }).row;
  t.strictSame(inf, { 'h.max': NaN, 'h.nonfinite': 3 }, '±Infinity and NaN halves decoded');
});

t.test('64-bit integers become the numbers Number(x) gives (exact to 2^53, rounded beyond)', async (t) => {
  const signed = [-(2n ** 63n), 2n ** 63n - 1n, -1n, 9007199254740993n, -4294967297n, 0n];
  const unsigned = [2n ** 64n - 1n, 2n ** 63n, 4294967296n, 1n];
  const opts: SummarizeRowOptions = { stats: ['mean', 'min', 'max', 'std'] };
  t.strictSame(flat({ x: BigInt64Array.from(signed) }, opts).row, flat({ x: Float64Array.from(signed, Number) }, opts).row);
  t.strictSame(flat({ x: BigUint64Array.from(unsigned) }, opts).row, flat({ x: Float64Array.from(unsigned, Number) }, opts).row);
  const offsetView = new BigInt64Array(BigInt64Array.from([7n, -3n, 5n]).buffer, 8, 2);
  t.strictSame(flat({ x: offsetView }).row, { 'x.mean': 1, 'x.min': -3, 'x.max': 5, 'x.std': 4 }, 'a subarray: its own elements');
});

t.test('onnxruntime Tensors that cannot be read: disposed, on a GPU, int4', async (t) => {
  const gone = new OrtTensor('float32', Float32Array.of(1, 2), [2]);
  gone.dispose();
  const gpu = OrtTensor.fromGpuBuffer({ size: 8 } as never, { dataType: 'float32', dims: [2] });
  const i4 = new OrtTensor('int4', Uint8Array.of(0x21), [2]);
  const { row, warnings } = flat({ gone, gpu, i4, ok: 1 });
  t.strictSame(row, { ok: 1 });
  t.strictSame(warnings.map((w) => w.code), ['W_DISPOSED', 'W_NOT_ON_CPU', 'W_NOT_NUMERIC']);
  t.match(warnings[1]?.message, /'gpu' is an onnxruntime tensor on 'gpu-buffer'/);
});

// ---------------------------------------------------------------------------------------
// Through a logger: what a user sees

t.test('through a logger: the keys of tensors, a model with gradients and views in the sink, warnings once', async (t) => {
  const sink = memorySink();
  const log = createLogger({ sinks: [sink], exitHooks: false });
  const warned: RowlogWarning[] = [];
  log.on('warning', (w: RowlogWarning) => warned.push(w));
  const { model, loss, dispose } = denseModel();
  const { value, grads } = tf.variableGrads(loss);
  const gone = tf.tensor1d([1]);
  gone.dispose();
  const view = ndarray(values(20, (i) => i), [4, 5]).transpose(1, 0).hi(3, 2);
  const onnx = new OrtTensor('int64', BigInt64Array.from([3n, 5n]), [2]);
  for (let step = 0; step < 2; step++) log.row('train', { loss: value, model: withGrads(model, grads), view, onnx, gone });
  await log.close();
  const rows = sink.table('train').rows();
  t.equal(rows.length, 2);
  const row = rows[0] as Record<string, unknown>;
  t.equal(row.loss, value.dataSync()[0]);
  const k = model.weights[2]?.name as string;
  statsOf(t, row, `model/${k}`, (model.weights[2] as tfl.LayerVariable).read().dataSync());
  statsOf(t, row, `model/grad/${k}`, (grads[k] as tf.Tensor).dataSync());
  statsOf(t, row, 'view', elements(view));
  statsOf(t, row, 'onnx', [3, 5]);
  t.notOk(Object.keys(row).some((key) => key.startsWith('gone')));
  t.strictSame(warned.map((w) => [w.code, w.table]), [['W_DISPOSED', 'train']], 'the disposed tensor: one warning for two rows');
  tf.dispose([value, ...Object.values(grads)]);
  model.dispose();
  dispose();
});
