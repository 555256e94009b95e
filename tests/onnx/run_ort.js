// Runs an ONNX file with onnxruntime (CPU) on the tensors of a safetensors file, as a deployed model would run:
//   node run_ort.js model.onnx inputs.safetensors outputs.safetensors
// Each F32 tensor of inputs.safetensors feeds the graph input of its name; every graph output is written back.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function readSafetensors(path) {
  const buf = fs.readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`${path}: ${name} is ${info.dtype}, not F32`);
    const [begin, end] = info.data_offsets;
    const bytes = buf.subarray(base + begin, base + end);
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    out[name] = new ort.Tensor('float32', data, info.shape);
  }
  return out;
}

function writeSafetensors(path, tensors) {
  const header = {};
  const chunks = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: 'F32', shape: t.dims, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(path, Buffer.concat([len, Buffer.from(json, 'utf8'), ...chunks]));
}

async function main() {
  const [model, input, output] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const feeds = readSafetensors(input);
  const results = await session.run(feeds);
  writeSafetensors(output, results);
  console.log(`onnxruntime ${ort.env.versions.common}: inputs ${session.inputNames.join(',')} ` +
    `outputs ${session.outputNames.map((n) => `${n}[${results[n].dims.join('x')}]`).join(',')}`);
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
