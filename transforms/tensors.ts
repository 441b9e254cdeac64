/**
 * Framework tensors and models (docs/DESIGN.md §3): TensorFlow.js tensors, variables and
 * LayersModels, onnxruntime tensors and strided `ndarray` views, recognised by their shape
 * (duck typing) so that rowlog imports none of those packages, and summarized with the same
 * statistics as any numeric array (./stats.ts).
 *
 * What is recognised, in this order (./flatten.ts asks only for objects no summarizer claimed):
 * - tfjs `Tensor`/`Variable`: `dataSync()` and `shape` (also plain look-alikes). Disposed
 *   (`isDisposed`) → skipped, `W_DISPOSED`. `complex64` (interleaved re, im) → `key/re.*` and
 *   `key/im.*`, read with stride 2; `string` → per item like a string array.
 * - the rest only on class instances: {@link withGrads}'s pair; a tfjs `LayerVariable`
 *   (`read()`, `originalName`) → its values; a tfjs `LayersModel` (`getWeights()`, `layers`,
 *   `weights`) → `key/<weight name>.*` per weight; an onnxruntime `Tensor` (`dims`, `type`,
 *   `size`, `data`; int64/uint64 → numbers, float16 bits decoded, `location` not on the CPU →
 *   `W_NOT_ON_CPU`, disposed → `W_DISPOSED`); an ndarray (`shape`, `stride`, `offset`, `data`)
 *   → the view's elements only, walked in place (./stats.ts `putStridedStats`, no copy).
 *
 * Why here and not in flatten.ts: the walk stays one tight function over plain data; this
 * file is what is only reached for class instances and tensor-likes.
 */
import { errText } from '../lib/core/ingest.js';
import { objectOption, optionError } from '../lib/core/options.js';
import { eachRun, putStats, putStridedStats, stridedRuns } from './stats.js';
import type { Runs, StatChoice, StatWriter } from './stats.js';

/** What the flattener (./flatten.ts) lends this file: its stat choice, its writer and its walk. */
export interface TensorHost extends StatWriter {
  /** The statistics to write (the `stats` option). */
  readonly o: StatChoice;
  /** Reports a problem (de-duplicated by the caller, once per table, code and key). */
  warn(code: string, message: string, key: string): void;
  /** Summarizes any value at `key` with the normal rules. */
  visit(v: unknown, key: string, depth: number): void;
}

/** A tfjs LayersModel as far as rowlog reads it. */
export interface LayersModelLike {
  /** Every weight (trainable and not), each a LayerVariable with a unique `name` such as `dense_Dense1/kernel`. */
  readonly weights: readonly unknown[];
  /** Present on every LayersModel; with `layers`, how one is recognised (it is not called). */
  getWeights(): unknown;
  /** The model's layers (only their presence is checked). */
  readonly layers: readonly unknown[];
}

/** A model and its gradients, made by {@link withGrads}; summarized by the flattening. */
export class ModelGrads {
  /** The model whose weights are written. */
  readonly model: LayersModelLike;
  /** The gradients, keyed by weight name (`tf.variableGrads(f).grads`, `optimizer.computeGradients(f).grads`). */
  readonly grads: Readonly<Record<string, unknown>>;

  constructor(model: LayersModelLike, grads: Readonly<Record<string, unknown>>) {
    this.model = model;
    this.grads = grads;
  }
}

/**
 * A tfjs LayersModel with the gradients of its weights, to log as one value (docs/DESIGN.md §3):
 * `log.row({ loss, model: withGrads(model, grads) })` writes every weight as
 * `model/<name>.mean/min/max/std` and each gradient as `model/grad/<name>.mean/…`, as noko
 * does for a PyTorch module and its parameters' `.grad`. `grads` is the NamedTensorMap of
 * `tf.variableGrads(f).grads` or `optimizer.computeGradients(f).grads` (keyed by the weights'
 * names); a gradient named like no weight is written too, after the weights.
 * @throws ERR_INVALID_OPTION when `model` is not a LayersModel or `grads` not an object.
 */
export function withGrads(model: LayersModelLike, grads: Readonly<Record<string, unknown>>): ModelGrads {
  if (!isLayersModel(objectOption(model, 'withGrads model'))) {
    throw optionError('type', 'withGrads model', 'must be a tfjs LayersModel (with weights, layers and getWeights())');
  }
  return new ModelGrads(model, objectOption(grads, 'withGrads grads'));
}

function isLayersModel(v: object): v is LayersModelLike {
  const m = v as Partial<Record<keyof LayersModelLike, unknown>>;
  return typeof m.getWeights === 'function' && Array.isArray(m.layers);
}

type Props = Record<string, unknown>;

/** What {@link kindOf} recognises. */
type Kind = 'tfjs' | 'grads' | 'layerVariable' | 'model' | 'onnx' | 'ndarray';

/**
 * Which framework value `v` is, by its shape, or undefined. The tfjs probe is the one of old: a
 * throw there skips the key (`W_THREW`, the caller's). A throw in the probes of class instances
 * (a class's getter named `shape`, `dims`… that fails) means none: the object is walked as any
 * other, whose walk reads only its own keys, as before those values were recognised.
 */
function kindOf(v: object, instance: boolean): Kind | undefined {
  const t = v as Props;
  if (typeof t.dataSync === 'function' && t.shape !== undefined) return 'tfjs';
  if (!instance) return undefined;
  try {
    if (v instanceof ModelGrads) return 'grads';
    if (typeof t.read === 'function' && typeof t.originalName === 'string') return 'layerVariable';
    if (isLayersModel(v)) return 'model';
    if (Array.isArray(t.dims) && typeof t.type === 'string' && typeof t.size === 'number' && 'data' in t) return 'onnx';
    if (Array.isArray(t.shape) && Array.isArray(t.stride) && 'data' in t) return 'ndarray';
  } catch {
    // a throwing probe: no framework value
  }
  return undefined;
}

/**
 * Summarizes `v` at `key` (`leaf`: the key a leaf gets, `value` at the root) when it is one of
 * the framework values above, and says whether it was; `instance`: `v` is a class instance.
 */
export function summarizeFramework(v: object, key: string, leaf: string, depth: number, instance: boolean, host: TensorHost): boolean {
  const kind = kindOf(v, instance);
  if (kind === undefined) return false;
  const t = v as Props;
  if (kind === 'tfjs') tfjsTensor(t, leaf, depth, host);
  else if (kind === 'grads') model((v as ModelGrads).model as unknown as Props, key, depth, host, (v as ModelGrads).grads);
  else if (kind === 'layerVariable') layerVariable(t, leaf, depth, host);
  else if (kind === 'model') model(t, key, depth, host, undefined);
  else if (kind === 'onnx') onnxTensor(t, leaf, depth, host);
  else ndarrayView(t, leaf, depth, host);
  return true;
}

/** Nothing to write: a disposed tensor or a read that threw (already warned). */
const SKIPPED = Symbol('skipped');

/**
 * `t[method]()`, the values of a tfjs tensor or variable, or {@link SKIPPED} with a warning:
 * `W_DISPOSED` when `gone` (reading would throw), `W_THREW` when the call throws.
 */
function readTfjs(t: Props, method: 'dataSync' | 'read', gone: boolean, k: string, host: TensorHost): unknown {
  if (gone) {
    host.warn('W_DISPOSED', `'${k}' is a disposed tensor and was skipped`, k);
    return SKIPPED;
  }
  try {
    return (t[method] as () => unknown).call(t);
  } catch (err) {
    host.warn('W_THREW', `${method}() of '${k}' threw (${errText(err)}); the key was skipped`, k);
    return SKIPPED;
  }
}

/** A tfjs Tensor or Variable (or a look-alike with `dataSync()` and `shape`): its values, read now. */
function tfjsTensor(t: Props, k: string, depth: number, host: TensorHost): void {
  const data = readTfjs(t, 'dataSync', t.isDisposed === true, k, host);
  if (data === SKIPPED) return;
  if (t.dtype === 'complex64' && data instanceof Float32Array) complex(data, k, host);
  else host.visit(data, k, depth);
}

/** complex64 data, interleaved `[re0, im0, re1, im1, …]`: the real and imaginary parts apart, read with stride 2. */
function complex(data: Float32Array, k: string, host: TensorHost): void {
  const n = data.length >> 1;
  if (n === 1) {
    host.visit(data[0], `${k}/re`, 0);
    host.visit(data[1], `${k}/im`, 0);
  } else if (n > 1) {
    putStridedStats(data, { offset: 0, shape: [n], stride: [2], n }, `${k}/re`, host.o, host);
    putStridedStats(data, { offset: 1, shape: [n], stride: [2], n }, `${k}/im`, host.o, host);
  }
}

/** A tfjs LayerVariable (a model's weight): the values of the Variable it holds. */
function layerVariable(t: Props, k: string, depth: number, host: TensorHost): void {
  const val = t.val as Props | undefined;
  const tensor = readTfjs(t, 'read', typeof val === 'object' && val !== null && val.isDisposed === true, k, host);
  if (tensor !== SKIPPED) host.visit(tensor, k, depth);
}

/** A LayersModel: each weight at `key/<name>`, then (with grads) its gradient at `key/grad/<name>`. */
function model(m: Props, key: string, depth: number, host: TensorHost, grads: Readonly<Record<string, unknown>> | undefined): void {
  const weights = m.weights;
  const at = (name: string) => (key === '' ? name : `${key}/${name}`);
  if (!Array.isArray(weights)) {
    const k = key === '' ? 'value' : key;
    host.warn('W_THREW', `the weights of the model '${k}' are not an array; it was skipped`, k);
    return;
  }
  const done = new Set<string>();
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i] as unknown;
    const name = typeof (w as Props | null)?.name === 'string' ? ((w as Props).name as string) : String(i);
    host.visit(w, at(name), depth + 1);
    if (grads !== undefined && Object.hasOwn(grads, name)) {
      done.add(name);
      host.visit(grads[name], at(`grad/${name}`), depth + 1);
    }
  }
  if (grads === undefined) return;
  for (const name of Object.keys(grads)) if (!done.has(name)) host.visit(grads[name], at(`grad/${name}`), depth + 1);
}

/** An onnxruntime Tensor (onnxruntime-web/-node/-common): its CPU data. */
function onnxTensor(t: Props, k: string, depth: number, host: TensorHost): void {
  const location = t.location;
  if (location === 'none') {
    host.warn('W_DISPOSED', `'${k}' is a disposed tensor and was skipped`, k);
    return;
  }
  if (typeof location === 'string' && location !== 'cpu' && location !== 'cpu-pinned') {
    host.warn('W_NOT_ON_CPU', `'${k}' is an onnxruntime tensor on '${location}', not on the CPU (download it with getData() to log it); it was skipped`, k);
    return;
  }
  const type = t.type as string;
  if (type === 'int4' || type === 'uint4') {
    host.warn('W_NOT_NUMERIC', `'${k}' is an onnxruntime ${type} tensor (two values a byte), which is not summarized; it was skipped`, k);
    return;
  }
  const data = t.data;
  host.visit(type === 'float16' && data instanceof Uint16Array ? halves(data) : data, k, depth);
}

/** IEEE half-precision bits (onnxruntime's float16 where there is no Float16Array) as numbers. */
function halves(bits: Uint16Array): Float64Array {
  const out = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i] as number;
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    out[i] = e === 0 ? sign * f * 2 ** -24 : e === 31 ? (f === 0 ? sign * Infinity : NaN) : sign * (1 + f / 1024) * 2 ** (e - 15);
  }
  return out;
}

const isIndex = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

/** An ndarray view: the statistics of exactly the elements it selects, walked in place. */
function ndarrayView(t: Props, k: string, depth: number, host: TensorHost): void {
  const shape = t.shape as unknown[];
  const stride = t.stride as unknown[];
  const offset = t.offset ?? 0;
  const data = t.data as unknown;
  const numeric = ArrayBuffer.isView(data) && !(data instanceof DataView) ? true : Array.isArray(data) && data.every((x) => typeof x === 'number');
  if (!numeric) {
    host.warn('W_NOT_NUMERIC', `'${k}' is an ndarray whose data is not numbers (dtype ${String(t.dtype)}); it was skipped`, k);
    return;
  }
  const a = data as ArrayLike<number | bigint>;
  const runs =
    shape.length === stride.length && isIndex(offset) && shape.every((s) => isIndex(s) && s >= 0) && stride.every(isIndex)
      ? stridedRuns(offset, shape as number[], stride as number[], a.length)
      : undefined;
  if (runs === undefined) {
    host.warn('W_BAD_VIEW', `'${k}' is an ndarray view whose shape, stride and offset do not fit its data; it was skipped`, k);
    return;
  }
  if (runs.n === 0) return;
  if (runs.n === 1) {
    host.visit(a[runs.offset], k, depth);
    return;
  }
  // BigInt data: only the view's elements are converted (the buffer may be far larger than the view)
  if (typeof a[runs.offset] === 'bigint') putStats(gather(a as ArrayLike<bigint>, runs), k, host.o, host);
  else putStridedStats(a as ArrayLike<number>, runs, k, host.o, host);
}

/** The elements of a BigInt view as numbers, in order (a copy: BigInts are not summed in place). */
function gather(a: ArrayLike<bigint>, runs: Runs): Float64Array {
  const out = new Float64Array(runs.n);
  let i = 0;
  eachRun(runs, (p, step, count) => {
    for (let j = 0; j < count; j++, p += step) out[i++] = Number(a[p]);
  });
  return out;
}

