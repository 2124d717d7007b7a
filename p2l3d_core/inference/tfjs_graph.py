"""Run a TF.js graph model (``model.json`` + weight ``.bin``) with torch.

Why: MoveNet MultiPose is published as a TF.js graph (see :mod:`model_files`); converting it
needs tensorflow, which clashes with this project's pins. Its graph is small, so a runner for
the ops it uses is shorter than a conversion step and keeps one runtime (torch).

Parsed: ``modelTopology.node`` (name, op, input, attr) and ``weightsManifest`` (weight files
concatenated in order; each weight's name, shape, dtype, and optional ``quantization``: float16,
or uint8/uint16 with ``scale`` and ``min``). Every Const takes its value from the manifest.

Ops run (exactly those MoveNet MultiPose uses): Placeholder, Const, Identity, Cast, Shape,
Size, Reshape, Squeeze, ExpandDims, StridedSlice, Pack, Unpack, ConcatV2, Split, Tile, Fill,
Range, GatherNd, TopKV2, ArgMax, Max, Sum, Abs, Exp, Sigmoid, Reciprocal, AddV2, AddN, Sub, Mul,
RealDiv, FloorDiv, Maximum, Minimum, SquaredDifference, Less, Greater, GreaterEqual, Equal,
LogicalAnd, Select, MaxPool, ResizeBilinear (half-pixel centres, no corner alignment),
DepthwiseConv2dNative, FusedDepthwiseConv2dNative and _FusedConv2D (fused_ops BiasAdd, Relu,
Relu6; padding SAME, VALID or EXPLICIT; strides, dilations; data_format NHWC). Any other op or
fused op is refused at load time, naming the op and the node.

Tensors keep TF's NHWC semantics. 1x1 convolutions (most of MobileNet's work) run as one matrix
product over the NHWC pixels; the others see the NHWC tensor through a zero-copy ``permute`` as
NCHW in torch's channels-last memory format, so no layout copies are made. Filters are turned
into torch's layout once, at load, and nodes whose inputs are all constant are folded at load,
so a call runs only the input-dependent nodes. MoveNet at 256 x 192: ~33 ms on one thread
(LiteRT with XNNPACK: ~20 ms), TensorFlow's outputs to 6e-6.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"DT_FLOAT": torch.float32, "DT_INT32": torch.int32, "DT_BOOL": torch.bool,
          "DT_INT64": torch.int64}
_NUMPY = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16,
          "uint8": np.uint8, "uint16": np.uint16, "int64": np.int64}
CONV_OPS = {"_FusedConv2D", "FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"}
FUSED = {"BiasAdd", "Relu", "Relu6"}


class UnsupportedOpError(NotImplementedError):
    """The graph holds an op (or fused op) this runner does not implement."""


def _attr(node: dict, key: str, default=None):
    """An attr's value: int, float, bool, str (base64 decoded), list, or dtype."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "list" in value:
        items = value["list"]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        return [int(i) for i in items.get("i", [])] or [float(f) for f in items.get("f", [])]
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return DTYPES[value["type"]]
    return default


def load_weights(model: dict, folder: Path) -> dict[str, torch.Tensor]:
    """Every weight of the manifest by name, dequantised to its declared dtype."""
    out: dict[str, torch.Tensor] = {}
    for group in model["weightsManifest"]:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = math.prod(w["shape"])
            quant = w.get("quantization")
            stored = np.dtype(_NUMPY[quant["dtype"] if quant else w["dtype"]])
            raw = np.frombuffer(data, stored, count, offset)
            offset += count * stored.itemsize
            if quant and quant["dtype"] != "float16":
                raw = raw.astype(np.float32) * quant["scale"] + quant["min"]
            value = raw.astype(_NUMPY[w["dtype"]]).reshape(w["shape"])
            out[w["name"]] = torch.from_numpy(value.copy())
        if offset != len(data):
            raise ValueError(f"weights of {group['paths']} take {offset} bytes, files hold "
                             f"{len(data)}")
    return out


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF's SAME padding along one axis (before, after): the extra one goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(node: dict, x: torch.Tensor, kh: int, kw: int, strides, dilations) -> list[int]:
    """[left, right, top, bottom] for ``F.pad`` on an NCHW view of ``x`` (NHWC semantics)."""
    padding = _attr(node, "padding")
    if padding == "VALID":
        return [0, 0, 0, 0]
    if padding == "EXPLICIT":
        p = _attr(node, "explicit_paddings")  # NHWC pairs: (0, 0, top, bottom, left, right, 0, 0)
        return [p[4], p[5], p[2], p[3]]
    top, bottom = _same_pads(x.shape[1], kh, strides[1], dilations[1])
    left, right = _same_pads(x.shape[2], kw, strides[2], dilations[2])
    return [left, right, top, bottom]


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)  # zero copy: an NHWC tensor is NCHW in channels-last memory


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _strided_slice(node: dict, x: torch.Tensor, begin, end, strides) -> torch.Tensor:
    """TF's StridedSlice with its five masks."""
    begin, end, strides = begin.tolist(), end.tolist(), strides.tolist()
    masks = {k: _attr(node, k, 0) for k in ("begin_mask", "end_mask", "ellipsis_mask",
                                            "new_axis_mask", "shrink_axis_mask")}
    index: list = []
    shrink: list[int] = []
    dim = 0  # axis of x the next spec applies to
    for i in range(len(begin)):
        bit = 1 << i
        if masks["ellipsis_mask"] & bit:
            following = sum(1 for j in range(i + 1, len(begin))
                            if not masks["new_axis_mask"] & (1 << j))
            skip = x.dim() - dim - following
            index.extend([slice(None)] * skip)
            dim += skip
            continue
        if masks["new_axis_mask"] & bit:
            index.append(None)
            continue
        if masks["shrink_axis_mask"] & bit:
            b = begin[i] + x.shape[dim] if begin[i] < 0 else begin[i]
            index.append(slice(b, b + 1))
            shrink.append(len(index) - 1)
        else:
            b = None if masks["begin_mask"] & bit else begin[i]
            e = None if masks["end_mask"] & bit else end[i]
            if strides[i] < 0:
                raise UnsupportedOpError(f"StridedSlice with a negative stride at {node['name']}")
            index.append(slice(b, e, strides[i]))
        dim += 1
    out = x[tuple(index)]  # each index entry makes one output axis
    return out.squeeze(tuple(shrink)) if shrink else out


def _top_k(x: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """TF's TopKV2 (sorted): ties keep the lower index first, hence a stable sort."""
    values, indices = torch.sort(x, dim=-1, descending=True, stable=True)
    n = int(k)
    return values[..., :n].contiguous(), indices[..., :n].to(torch.int32).contiguous()


def _gather_nd(params: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    idx = indices.long()
    return params[tuple(idx[..., i] for i in range(idx.shape[-1]))]


def _axes(axes: torch.Tensor, rank: int) -> list[int]:
    return [a % rank for a in axes.reshape(-1).tolist()]


def _reduce(fn: Callable, node: dict, x: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    dims = _axes(axes, x.dim())
    keep = _attr(node, "keep_dims", False)
    return fn(x, dim=dims, keepdim=keep).to(x.dtype) if dims else x  # int32 stays int32


def _floordiv(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.div(a, b, rounding_mode="floor")


def _select(cond: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if cond.dim() == 1 and a.dim() > 1:  # TF's Select: a vector picks whole rows
        cond = cond.reshape(-1, *([1] * (a.dim() - 1)))
    return torch.where(cond, a, b)


def _resize_bilinear(node: dict, x: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    if _attr(node, "align_corners", False) or not _attr(node, "half_pixel_centers", False):
        raise UnsupportedOpError(f"ResizeBilinear other than half-pixel centres at "
                                 f"{node['name']}")
    h, w = size.tolist()
    out = F.interpolate(_nchw(x.float()), size=(h, w), mode="bilinear", align_corners=False)
    return _nhwc(out)


def _max_pool(node: dict, x: torch.Tensor) -> torch.Tensor:
    ksize, strides = _attr(node, "ksize"), _attr(node, "strides")
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise UnsupportedOpError(f"MaxPool with data_format other than NHWC at {node['name']}")
    left, right, top, bottom = _pads(node, x, ksize[1], ksize[2], strides, [1, 1, 1, 1])
    y = _nchw(x)
    if left == right and top == bottom and left * 2 <= ksize[2] and top * 2 <= ksize[1]:
        y = F.max_pool2d(y, (ksize[1], ksize[2]), (strides[1], strides[2]), (top, left))
    else:
        y = F.pad(y, [left, right, top, bottom], value=-math.inf)
        y = F.max_pool2d(y, (ksize[1], ksize[2]), (strides[1], strides[2]))
    return _nhwc(y)


# Elementwise and shape ops: (inputs...) -> output, or a tuple of outputs.
SIMPLE: dict[str, Callable[..., torch.Tensor | tuple]] = {
    "Identity": lambda x: x,
    "Abs": torch.abs, "Exp": torch.exp, "Sigmoid": torch.sigmoid, "Reciprocal": torch.reciprocal,
    "AddV2": torch.add, "Sub": torch.sub, "Mul": torch.mul, "RealDiv": torch.div,
    "FloorDiv": _floordiv, "Maximum": torch.maximum, "Minimum": torch.minimum,
    "SquaredDifference": lambda a, b: (a - b) * (a - b),
    "Less": torch.lt, "Greater": torch.gt, "GreaterEqual": torch.ge, "Equal": torch.eq,
    "LogicalAnd": torch.logical_and, "Select": _select,
    "AddN": lambda *xs: sum(xs[1:], xs[0]),
    "Shape": lambda x: torch.tensor(x.shape, dtype=torch.int32),
    "Size": lambda x: torch.tensor(x.numel(), dtype=torch.int32),
    "Reshape": lambda x, shape: x.reshape(shape.tolist()),
    "ExpandDims": lambda x, dim: x.unsqueeze(int(dim)),
    "Tile": lambda x, reps: x.repeat(reps.tolist()),
    "Fill": lambda shape, value: torch.full(shape.tolist(), value.item(), dtype=value.dtype),
    "GatherNd": _gather_nd,
    "TopKV2": _top_k,
}


class TfjsGraph:
    """A TF.js graph model ready to run: ``graph(input)`` or ``graph({name: input})`` returns
    the signature's outputs (a tensor when there is one). Run under ``torch.no_grad``."""

    def __init__(self, model_json: str | Path):
        path = Path(model_json)
        model = json.loads(path.read_text())
        self.nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
        for node in self.nodes.values():
            self._check(node)
        weights = load_weights(model, path.parent)
        signature = model.get("signature", {})
        self.inputs = [v["name"].split(":")[0] for v in signature.get("inputs", {}).values()] or \
            [n for n, node in self.nodes.items() if node["op"] == "Placeholder"]
        self.outputs = [v["name"] for v in signature.get("outputs", {}).values()]
        self.values: dict[str, tuple] = {}  # constants, folded at load
        for name, node in self.nodes.items():
            if node["op"] == "Const":
                if name not in weights:
                    raise ValueError(f"Const {name} has no value in the weights manifest")
                self.values[name] = (weights[name],)
        self.filters = {name: self._filter(node) for name, node in self.nodes.items()
                        if node["op"] in CONV_OPS}
        self.order = self._topological(self.outputs)
        self.order = self._fold_constants(self.order)

    @staticmethod
    def _check(node: dict) -> None:
        op = node["op"]
        if op != "Const" and op not in SIMPLE and op not in CONV_OPS and op not in OTHER_OPS:
            raise UnsupportedOpError(f"op {op} (node {node['name']}) is not supported by the "
                                     "TF.js graph runner")
        fused = _attr(node, "fused_ops", [])
        if any(f not in FUSED for f in fused):
            raise UnsupportedOpError(f"fused op(s) {[f for f in fused if f not in FUSED]} of "
                                     f"{op} (node {node['name']}) are not supported")
        if (op in CONV_OPS or op == "MaxPool") and _attr(node, "data_format", "NHWC") != "NHWC":
            raise UnsupportedOpError(f"data_format {_attr(node, 'data_format')} of {op} "
                                     f"(node {node['name']}) is not supported")

    @staticmethod
    def _source(ref: str) -> tuple[str, int]:
        name, _, index = ref.partition(":")
        return name, int(index or 0)

    def _topological(self, outputs: list[str]) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}
        for out in outputs:
            stack = [(self._source(out)[0], False)]
            while stack:
                name, done = stack.pop()
                if done:
                    state[name] = 2
                    order.append(name)
                    continue
                if state.get(name):
                    continue
                if name not in self.nodes:
                    raise ValueError(f"the graph has no node {name}")
                state[name] = 1
                stack.append((name, True))
                for ref in self.nodes[name].get("input", []):
                    if not ref.startswith("^"):
                        src = self._source(ref)[0]
                        if not state.get(src):
                            stack.append((src, False))
        return order

    def _filter(self, node: dict) -> torch.Tensor:
        """The node's filter (a Const) in torch's layout: (in, out) for a 1x1 convolution, run
        as a matrix product on the NHWC rows; OIHW otherwise. Contiguous: a channels-last
        filter sends 1x1 convolutions to a kernel 100x slower (torch 2.13, one thread)."""
        w = self.values[self._source(node["input"][1])[0]][0]
        if node["op"] == "_FusedConv2D":
            if w.shape[:2] == (1, 1):
                return w[0, 0].contiguous()
            return w.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        kh, kw, cin, mult = w.shape  # depthwise: HW, in, multiplier -> (in * mult, 1, H, W)
        return w.reshape(kh, kw, cin * mult).permute(2, 0, 1).unsqueeze(1).contiguous()

    def _fold_constants(self, order: list[str]) -> list[str]:
        """Evaluate nodes whose inputs are all constants once; return the rest, in order."""
        left = []
        for name in order:
            node = self.nodes[name]
            if name in self.values:
                continue
            ins = [self._source(r)[0] for r in node.get("input", []) if not r.startswith("^")]
            if node["op"] != "Placeholder" and all(i in self.values for i in ins):
                with torch.no_grad():
                    self.values[name] = self._run(node, self.values)
            else:
                left.append(name)
        return left

    def _conv(self, node: dict, x: torch.Tensor, args: list[torch.Tensor]) -> torch.Tensor:
        weight = self.filters[node["name"]]
        strides, dilations = _attr(node, "strides"), _attr(node, "dilations", [1, 1, 1, 1])
        fused = _attr(node, "fused_ops", [])
        bias = args[0] if fused and fused[0] == "BiasAdd" else None
        if weight.dim() == 2:  # 1x1: a matrix product over pixels, no padding
            x = x[:, ::strides[1], ::strides[2]] if strides[1:3] != [1, 1] else x
            rows = x.reshape(-1, x.shape[-1])
            out = torch.addmm(bias, rows, weight) if bias is not None else rows @ weight
            return self._activate(node, out.reshape(*x.shape[:-1], -1), fused, bias)
        kh, kw = weight.shape[2], weight.shape[3]
        left, right, top, bottom = _pads(node, x, kh, kw, strides, dilations)
        y = _nchw(x)
        groups = 1 if node["op"] == "_FusedConv2D" else y.shape[1]
        padding: tuple[int, int] | int = 0
        if left == right and top == bottom:
            padding = (top, left)
        else:
            y = F.pad(y, [left, right, top, bottom])
        y = F.conv2d(y, weight, bias, (strides[1], strides[2]), padding,
                     (dilations[1], dilations[2]), groups)
        return self._activate(node, _nhwc(y), fused, bias)

    @staticmethod
    def _activate(node: dict, y: torch.Tensor, fused: list[str], bias) -> torch.Tensor:
        for op in fused[1 if bias is not None else 0:]:
            if op == "Relu":
                y = F.relu_(y)
            elif op == "Relu6":
                y = y.clamp_(0.0, 6.0)
            else:
                raise UnsupportedOpError(f"fused op {op} after BiasAdd at {node['name']}")
        return y

    def _run(self, node: dict, values: dict[str, tuple]) -> tuple:
        ins = []
        for ref in node.get("input", []):
            if not ref.startswith("^"):
                name, index = self._source(ref)
                ins.append(values[name][index])
        op = node["op"]
        if op in SIMPLE:
            out = SIMPLE[op](*ins)
        elif op in CONV_OPS:
            out = self._conv(node, ins[0], ins[2:])
        else:
            out = OTHER_OPS[op](node, *ins)
        return out if isinstance(out, tuple) else (out,)

    def __call__(self, inputs: torch.Tensor | np.ndarray | dict) -> torch.Tensor | list:
        if not isinstance(inputs, dict):
            inputs = {self.inputs[0]: inputs}
        values = dict(self.values)
        for name, value in inputs.items():
            node = self.nodes[name.split(":")[0]]
            dtype = _attr(node, "dtype", torch.float32)
            values[node["name"]] = (torch.as_tensor(value).to(dtype),)
        with torch.no_grad():
            for name in self.order:
                if name not in values:
                    values[name] = self._run(self.nodes[name], values)
        outs = [values[n][i] for n, i in map(self._source, self.outputs)]
        return outs[0] if len(outs) == 1 else outs


def _cast(node: dict, x: torch.Tensor) -> torch.Tensor:
    return x.to(_attr(node, "DstT"))


def _squeeze(node: dict, x: torch.Tensor) -> torch.Tensor:
    dims = _attr(node, "squeeze_dims") or []
    return x.squeeze(tuple(d % x.dim() for d in dims)) if dims else x.squeeze()


def _range(node: dict, start, limit, delta) -> torch.Tensor:
    dtype = _attr(node, "Tidx", torch.int32)
    return torch.arange(start.item(), limit.item(), delta.item(), dtype=dtype)


OTHER_OPS: dict[str, Callable[..., torch.Tensor | tuple]] = {
    "Cast": _cast,
    "Range": _range,
    "MaxPool": _max_pool,
    "ResizeBilinear": _resize_bilinear,
    "StridedSlice": _strided_slice,
    "Squeeze": _squeeze,
    "Pack": lambda node, *xs: torch.stack(xs, dim=_attr(node, "axis", 0)),
    "Unpack": lambda node, x: tuple(x.unbind(_attr(node, "axis", 0))),
    "ConcatV2": lambda node, *xs: torch.cat(xs[:-1], dim=int(xs[-1])),
    "Split": lambda node, dim, x: tuple(x.chunk(_attr(node, "num_split"), int(dim))),
    "Max": lambda node, x, axes: _reduce(torch.amax, node, x, axes),
    "Sum": lambda node, x, axes: _reduce(torch.sum, node, x, axes),
    "ArgMax": lambda node, x, dim: x.argmax(int(dim)).to(_attr(node, "output_type",
                                                               torch.int64)),
    "Placeholder": lambda node: (_ for _ in ()).throw(
        ValueError(f"no value given for the input {node['name']}")),
}
