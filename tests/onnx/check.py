"""Checks an exported ONNX file with Debian's onnx and OpenCV, as deployment tools read it.

    python3 check.py model.onnx                         -> onnx.checker (full_check, i.e. with shape inference);
                                                           prints the file's interface and metadata as JSON
    python3 check.py model.onnx --opencv in out         -> also runs it with OpenCV DNN (cv2.dnn.readNetFromONNX)
                                                           on the `images` tensor of in.safetensors -> out
"""
import json
import struct
import sys

import numpy as np
import onnx


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {info['dtype']}, not F32")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(buf[8 + n + a : 8 + n + b], dtype="<f4").reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        data = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def dims(value):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in value.type.tensor_type.shape.dim]


def main(argv):
    path = argv[1]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    report = {
        "ir_version": model.ir_version,
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")],
        "inputs": {v.name: dims(v) for v in model.graph.input},
        "outputs": {v.name: dims(v) for v in model.graph.output},
        "metadata": {p.key: p.value for p in model.metadata_props},
        "nodes": len(model.graph.node),
    }
    if len(argv) == 5 and argv[2] == "--opencv":
        import cv2

        net = cv2.dnn.readNetFromONNX(path)
        net.setInput(read_safetensors(argv[3])["images"], "images")
        write_safetensors(argv[4], {"output0": net.forward()})
        report["opencv"] = cv2.__version__
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv)
