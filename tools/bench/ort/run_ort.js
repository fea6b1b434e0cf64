#!/usr/bin/env node
// Times one model in ONNX Runtime (onnxruntime-node, CPU) for seqrun's side-by-side benchmark: load, warmup,
// timed runs on .npy inputs; prints one JSON object and writes the last run's outputs as .npy files.
//
//   node run_ort.js MODEL.onnx --input NAME=FILE.npy [--warmup 3] [--repeat 10] [--threads 2]
//                   [--output-dir DIR]
//
// Session options: graphOptimizationLevel 'all', intraOpNumThreads = --threads, interOpNumThreads 1,
// executionMode 'sequential'. JSON: {runtime, version, model, load_ms, min_ms, median_ms, mean_ms, max_ms,
// times_ms, peak_rss_mib, threads, output_files}. peak_rss_mib is process.resourceUsage().maxRSS / 1024:
// the whole node process, including node's own baseline (~40-50 MiB).
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

// numpy descr <-> ONNX Runtime tensor type and typed array.
const NPY_TYPES = {
  '<f4': { ort: 'float32', array: Float32Array },
  '<f8': { ort: 'float64', array: Float64Array },
  '<f2': { ort: 'float16', array: Uint16Array },
  '<i8': { ort: 'int64', array: BigInt64Array },
  '<i4': { ort: 'int32', array: Int32Array },
  '<i2': { ort: 'int16', array: Int16Array },
  '|i1': { ort: 'int8', array: Int8Array },
  '|u1': { ort: 'uint8', array: Uint8Array },
  '|b1': { ort: 'bool', array: Uint8Array },
};

// Reads a C-order, little-endian .npy file (format 1.0-3.0) into an ort.Tensor.
function readNpy(file) {
  const bytes = fs.readFileSync(file);
  if (bytes.length < 10 || bytes.toString('latin1', 0, 6) !== '\x93NUMPY') {
    throw new Error(`${file}: not a .npy file`);
  }
  const major = bytes[6];
  const headerLenBytes = major === 1 ? 2 : 4;
  const headerLen = headerLenBytes === 2 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const dataStart = 8 + headerLenBytes + headerLen;
  const header = bytes.toString('latin1', 8 + headerLenBytes, dataStart);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeText) throw new Error(`${file}: malformed .npy header: ${header}`);
  if (fortran[1] === 'True') throw new Error(`${file}: Fortran-order arrays are not supported`);
  const type = NPY_TYPES[descr[1]];
  if (!type) throw new Error(`${file}: unsupported dtype ${descr[1]}`);
  const shape = shapeText[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * type.array.BYTES_PER_ELEMENT;
  if (dataStart + byteLength > bytes.length) {
    throw new Error(`${file}: data truncated (need ${byteLength} bytes after the header)`);
  }
  // Copy into a fresh, aligned buffer: typed arrays need an offset that is a multiple of the element size.
  const data = new type.array(count);
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart, dataStart + byteLength));
  return new ort.Tensor(type.ort, data, shape);
}

// Writes an ort.Tensor as a version 1.0 .npy file (header padded so the data starts at a multiple of 64).
function writeNpy(file, tensor) {
  const entry = Object.entries(NPY_TYPES).find(([, t]) => t.ort === tensor.type);
  if (!entry) throw new Error(`${file}: cannot write tensors of type ${tensor.type}`);
  const dims = tensor.dims.map(String);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${entry[0]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'), body]));
}

function parseArgs(argv) {
  const args = { model: null, inputs: [], warmup: 3, repeat: 10, threads: 2, outputDir: null };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--input' || a === '-i') args.inputs.push(next());
    else if (a === '--warmup') args.warmup = Number(next());
    else if (a === '--repeat') args.repeat = Number(next());
    else if (a === '--threads') args.threads = Number(next());
    else if (a === '--output-dir') args.outputDir = next();
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (args.model === null) args.model = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (args.model === null) throw new Error('no model given');
  for (const k of ['warmup', 'repeat', 'threads']) {
    if (!Number.isInteger(args[k]) || args[k] < 0) throw new Error(`--${k} must be a non-negative integer`);
  }
  if (args.repeat < 1) throw new Error('--repeat must be at least 1');
  return args;
}

function summarize(times) {
  const sorted = [...times].sort((a, b) => a - b);
  const n = sorted.length;
  const median = n % 2 === 1 ? sorted[(n - 1) / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  const mean = sorted.reduce((a, b) => a + b, 0) / n;
  return { min_ms: sorted[0], median_ms: median, mean_ms: mean, max_ms: sorted[n - 1] };
}

const msSince = (start) => Number(process.hrtime.bigint() - start) / 1e6;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const feeds = {};
  for (const spec of args.inputs) {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq + 1 === spec.length) throw new Error(`--input '${spec}': expected NAME=FILE.npy`);
    feeds[spec.slice(0, eq)] = readNpy(spec.slice(eq + 1));
  }
  const options = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
  const loadStart = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(args.model, options);
  const loadMs = msSince(loadStart);

  const times = [];
  let outputs = null;
  for (let i = 0; i < args.warmup + args.repeat; ++i) {
    const start = process.hrtime.bigint();
    outputs = await session.run(feeds);
    const ms = msSince(start);
    if (i >= args.warmup) times.push(ms);
  }

  const outputFiles = [];
  if (args.outputDir !== null) {
    fs.mkdirSync(args.outputDir, { recursive: true });
    for (const name of session.outputNames) {
      const file = path.join(args.outputDir, name.replace(/[^A-Za-z0-9._-]/g, '_') + '.npy');
      writeNpy(file, outputs[name]);
      outputFiles.push(file);
    }
  }
  const result = {
    runtime: 'onnxruntime',
    version: ort.env.versions.common,
    model: args.model,
    threads: args.threads,
    warmup: args.warmup,
    repeat: args.repeat,
    load_ms: loadMs,
    ...summarize(times),
    times_ms: times,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    output_files: outputFiles,
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`run_ort: error: ${e.message}\n`);
  process.exit(1);
});
