"""The TF.js graph runner on small hand-made graphs: TF's semantics where they are easy to get
wrong (SAME padding with stride 2, StridedSlice masks, dequantisation), and a clear refusal of
ops it does not run. The whole MoveNet graph is checked against TensorFlow in test_movenet.py."""

import base64
import json

import numpy as np
import pytest
import torch

from p2l3d_core.inference.tfjs_graph import TfjsGraph, UnsupportedOpError


def s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def ints(*values: int) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


FLOAT = {"type": "DT_FLOAT"}


def write_model(folder, nodes: list[dict], weights: list[tuple[str, np.ndarray, dict | None]],
                output: str):
    """model.json + weights.bin; each weight (name, value, quantization or None)."""
    blobs, manifest = [], []
    for name, value, quant in weights:
        entry = {"name": name, "shape": list(value.shape),
                 "dtype": "int32" if value.dtype == np.int32 else "float32"}
        if quant is None:
            blobs.append(value.tobytes())
        elif quant["dtype"] == "float16":
            blobs.append(value.astype(np.float16).tobytes())
        else:
            blobs.append(np.round((value - quant["min"]) / quant["scale"]).astype(np.uint8)
                         .tobytes())
        if quant is not None:
            entry["quantization"] = quant
        manifest.append(entry)
        dtype = {"type": "DT_INT32"} if value.dtype == np.int32 else FLOAT
        nodes = [{"name": name, "op": "Const", "attr": {"dtype": dtype}}, *nodes]
    (folder / "weights.bin").write_bytes(b"".join(blobs))
    model = {"format": "graph-model",
             "modelTopology": {"node": [{"name": "input", "op": "Placeholder",
                                         "attr": {"dtype": FLOAT}}, *nodes]},
             "weightsManifest": [{"paths": ["weights.bin"], "weights": manifest}],
             "signature": {"inputs": {"x": {"name": "input:0"}},
                           "outputs": {"y": {"name": f"{output}:0"}}}}
    (folder / "model.json").write_text(json.dumps(model))
    return folder / "model.json"


def test_a_fused_stride_2_same_conv_pads_like_tensorflow(tmp_path):
    """TF's SAME puts the odd padding pixel after (bottom, right); torch's symmetric padding
    would shift the output by one pixel."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    node = {"name": "conv", "op": "_FusedConv2D", "input": ["input", "w", "b"],
            "attr": {"T": FLOAT, "strides": ints(1, 2, 2, 1), "padding": s("SAME"),
                     "dilations": ints(1, 1, 1, 1), "data_format": s("NHWC"),
                     "fused_ops": {"list": {"s": [s("BiasAdd")["s"], s("Relu6")["s"]]}},
                     "num_args": {"i": "1"}}}
    graph = TfjsGraph(write_model(tmp_path, [node], [("w", w, None), ("b", b, None)], "conv"))
    x = rng.normal(size=(1, 6, 6, 2)).astype(np.float32)
    padded = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))  # 6 -> 3 outputs: pad 0 before, 1 after
    expected = np.zeros((1, 3, 3, 4), np.float32)
    for i in range(3):
        for j in range(3):
            patch = padded[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
            expected[0, i, j] = np.einsum("hwc,hwco->o", patch, w) + b
    np.testing.assert_allclose(graph(x).numpy(), np.clip(expected, 0, 6), atol=1e-5)


def test_strided_slice_masks_and_dequantised_weights(tmp_path):
    nodes = [
        # x[..., 1] with a new axis in front: ellipsis, shrink on the last spec
        {"name": "slice", "op": "StridedSlice", "input": ["input", "begin", "end", "step"],
         "attr": {"T": FLOAT, "Index": {"type": "DT_INT32"}, "begin_mask": {"i": "0"},
                  "end_mask": {"i": "0"}, "ellipsis_mask": {"i": "2"},
                  "new_axis_mask": {"i": "1"}, "shrink_axis_mask": {"i": "4"}}},
        {"name": "scaled", "op": "Mul", "input": ["slice", "q"], "attr": {"T": FLOAT}},
    ]
    q = np.array([0.5, 1.0, 1.5], np.float32)
    weights = [("begin", np.array([0, 0, 1], np.int32), None),
               ("end", np.array([0, 0, 2], np.int32), None),
               ("step", np.array([1, 1, 1], np.int32), None),
               ("q", q, {"dtype": "uint8", "scale": 0.5, "min": 0.0})]
    model = write_model(tmp_path, nodes, weights, "scaled")
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)[..., :3]
    out = TfjsGraph(model)(np.ascontiguousarray(x)).numpy()
    np.testing.assert_allclose(out, x[None, ..., 1] * q)  # (1, 2, 3) times the dequantised q


def test_an_unknown_op_is_refused_naming_the_op_and_node(tmp_path):
    nodes = [{"name": "mystery", "op": "Cumprod", "input": ["input"], "attr": {"T": FLOAT}}]
    with pytest.raises(UnsupportedOpError, match=r"op Cumprod \(node mystery\) is not supported"):
        TfjsGraph(write_model(tmp_path, nodes, [], "mystery"))


def test_an_unknown_fused_op_is_refused(tmp_path):
    w = np.ones((1, 1, 1, 1), np.float32)
    node = {"name": "conv", "op": "_FusedConv2D", "input": ["input", "w", "w"],
            "attr": {"strides": ints(1, 1, 1, 1), "padding": s("VALID"),
                     "fused_ops": {"list": {"s": [s("BiasAdd")["s"], s("Elu")["s"]]}}}}
    with pytest.raises(UnsupportedOpError, match=r"\['Elu'\] of _FusedConv2D \(node conv\)"):
        TfjsGraph(write_model(tmp_path, [node], [("w", w, None)], "conv"))


def test_float16_weights_are_widened(tmp_path):
    value = np.array([1.0, -2.5, 3.25], np.float32)
    nodes = [{"name": "sum", "op": "AddV2", "input": ["input", "h"], "attr": {"T": FLOAT}}]
    graph = TfjsGraph(write_model(tmp_path, nodes, [("h", value, {"dtype": "float16"})], "sum"))
    assert graph(torch.zeros(3)).tolist() == value.tolist()
