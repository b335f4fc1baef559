"""What a ticket buys at inference: a compact checkpoint, sparse-kernel and slimmed forms, FLOPs, energy.

**Compact ticket file.** `export_ticket(model, mask, path)` writes a safetensors file holding, for
every masked weight, its keep/prune bits packed eight to a byte (`<name>/bits`, uint8) and only the
kept values in row-major order (`<name>/values`, float32, or float16 with `values_dtype`), plus every
other tensor of the state dict unchanged (`dense/<name>`: biases, norms, buffers). `load_ticket`
restores it into the same architecture bit-exactly: the model reloaded equals the masked model, tensor
for tensor. Why safetensors and not a format of our own: its layout is specified and language-neutral
(an 8-byte header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw
little-endian bytes), it is read without unpickling (no code runs on load), it checks that the header
and the byte ranges cover the file exactly (a truncated file is refused) and it is maintained and
widely used (Hugging Face). What it does not do is checksum the bytes, so the header's metadata (one
JSON entry, `ticketlib`: the format, the masked shapes, the tensor order) carries a SHA-256 of that
description and of every tensor, and a load recomputes it: a flipped byte is an error naming the file,
never silently wrong weights.

Size arithmetic (`payload_bytes`): each masked weight costs 1 bit of mask plus `value_bits` (32) bits
times the density, i.e. (1 + 32·d)/32 of its dense float32 size; each layer's bits are padded to whole
bytes; every other tensor costs its dense size. The file is that payload plus the safetensors header
(`header_bytes`).

**Inference forms.** `sparse_model` swaps each Linear for a `SparseLinear` holding its weight in CSR
(or BSR) and running `torch.addmm` on torch's sparse CPU kernels. For convolutions torch has no
sparse-weight kernel on the CPU (`sparse_conv_support` asks torch and returns its refusal);
`SparseConv2d` lowers one to what does exist, im2col (`F.unfold`) then a CSR matmul. A channel-pruned
network runs as the physically smaller network of `slim.slim`. `max_relative_error` checks a form
against the masked dense model (`OUTPUT_RTOL`).

**Cost.** `latency_timing` times forms interleaved with `torch.utils.benchmark`, re-timing them while the
machine was busy and recording how busy (`contention`); `counted_flops`
counts FLOPs with `torch.utils.flop_counter.FlopCounterMode` (2 per multiply-add, bias adds not
counted); for the sparse modules the multiply-adds on their stored values replace what the counter books
(it counts a sparse `addmm` by its dense shape and a sparse `mm` not at all). `estimated_joules` turns FLOPs into an *estimate* of arithmetic energy from a
published figure (`PJ_PER_FP32_MAC`, `ENERGY_SOURCE`); `rapl_counters` / `measured_joules` read the
CPU's RAPL energy counters where /sys/class/powercap is readable.
"""
from __future__ import annotations

import copy
import gzip
import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

from . import contention
from .masks import Mask
from .models import training_mode

FORMAT = "ticketlib.ticket/1"
VALUE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
# Two float32 computations of the same outputs in another summation order (CSR vs dense, a narrower
# conv) differ by rounding only: about sqrt(n)·eps, at most n·eps ≈ 1e-4 for the n ≈ 800-term sums here.
OUTPUT_RTOL = 1e-4
# Horowitz, ISSCC 2014, energy table for 45 nm at 0.9 V: 32-bit float multiply 3.7 pJ, 32-bit float add 0.9 pJ.
PJ_FP32_MULT, PJ_FP32_ADD = 3.7, 0.9
PJ_PER_FP32_MAC = PJ_FP32_MULT + PJ_FP32_ADD
ENERGY_SOURCE = ("estimate, not a measurement: FLOPs / 2 multiply-adds x 4.6 pJ, a 32-bit float multiply (3.7 pJ) "
                 "plus a 32-bit float add (0.9 pJ) at 45 nm, 0.9 V (M. Horowitz, 'Computing's energy problem (and what "
                 "we can do about it)', ISSCC 2014, energy table); arithmetic only: no memory access, no control "
                 "overhead, no idle power")


class TicketFileError(ValueError):
    """A ticket file that cannot be trusted (truncated, corrupt, not a ticket, another model); names the file."""


# --- the compact file ------------------------------------------------------------------------------
def pack_bits(keep: torch.Tensor) -> torch.Tensor:
    """A bool tensor's elements (row-major) packed eight to a byte, least significant bit first (uint8)."""
    return torch.from_numpy(np.packbits(keep.detach().cpu().numpy().reshape(-1), bitorder="little"))


def unpack_bits(bits: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The bool tensor of `shape` that `pack_bits` packed."""
    count = math.prod(shape)
    return torch.from_numpy(np.unpackbits(bits.numpy(), count=count, bitorder="little").astype(bool)).reshape(shape)


def _digest(tensors: Mapping[str, torch.Tensor], info: Mapping) -> str:
    """SHA-256 over the ticket's description (`info`: shapes, order, value dtype) and every tensor's name,
    dtype, shape and bytes, in name order."""
    digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def ticket_tensors(state: Mapping[str, torch.Tensor], mask: Mask,
                   values_dtype: str = "float32") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a compact ticket: packed bits and kept values per masked weight, the rest as is."""
    if values_dtype not in VALUE_DTYPES:
        raise ValueError(f"values_dtype must be one of {list(VALUE_DTYPES)}, got {values_dtype!r}")
    missing = [n for n in mask if n not in state]
    if missing:
        raise KeyError(f"the mask names weights the state dict lacks: {missing}")
    tensors, shapes = {}, {}
    for name, value in state.items():
        value = value.detach().cpu()
        if name in mask:
            keep = mask[name]
            tensors[f"{name}/bits"] = pack_bits(keep)
            tensors[f"{name}/values"] = value[keep].to(VALUE_DTYPES[values_dtype]).contiguous()
            shapes[name] = [list(value.shape), str(value.dtype).removeprefix("torch.")]
        else:
            tensors[f"dense/{name}"] = value.contiguous().clone()
    info = {"format": FORMAT, "values_dtype": values_dtype, "masked": shapes, "order": list(state)}
    # one metadata entry: safetensors keeps metadata in a hash map whose order changes from process to process
    meta = {"ticketlib": json.dumps({**info, "sha256": _digest(tensors, info)}, sort_keys=True)}
    return tensors, meta


def export_ticket(model: nn.Module | Mapping[str, torch.Tensor], mask: Mask, path: str | Path,
                  values_dtype: str = "float32") -> int:
    """Write the compact ticket of `model` (or a state dict) under `mask` to `path`; returns its size in bytes.

    The pruned positions are not stored: they come back as exact zeros (the masked model).

    Args:
        model: the trained model (or its state dict).
        mask: the ticket's mask.
        path: the safetensors file to write.
        values_dtype: the stored values' dtype ("float32" or "float16").

    Returns:
        The file's size in bytes.

    Example:
        >>> export_ticket(model, mask, "ticket.safetensors")  # doctest: +SKIP
    """
    state = model.state_dict() if isinstance(model, nn.Module) else model
    tensors, meta = ticket_tensors(state, mask, values_dtype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path.stat().st_size


def read_ticket(path: str | Path) -> tuple[dict[str, torch.Tensor], Mask]:
    """(state dict, mask) of a compact ticket file; raises `TicketFileError` naming the file if it is not sound."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise TicketFileError(f"{path}: not a readable ticket file (truncated or corrupt?): {error}") from None
    try:
        info = json.loads(meta["ticketlib"])
    except (KeyError, json.JSONDecodeError):
        raise TicketFileError(f"{path}: not a {FORMAT} file (no readable 'ticketlib' metadata)") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise TicketFileError(f"{path}: not a {FORMAT} file")
    stored = info.pop("sha256", None)
    if stored != _digest(tensors, info):
        raise TicketFileError(f"{path}: checksum mismatch: the stored tensors or their description are corrupt")
    state, keeps = {}, {}
    for name in info["order"]:
        if name in info["masked"]:
            shape, dtype = info["masked"][name]
            bits, values = tensors.get(f"{name}/bits"), tensors.get(f"{name}/values")
            if bits is None or values is None or bits.numel() != math.ceil(math.prod(shape) / 8):
                raise TicketFileError(f"{path}: masked weight {name!r} is missing or has the wrong size")
            keep = unpack_bits(bits, shape)
            if int(keep.sum()) != values.numel():
                raise TicketFileError(f"{path}: {name!r} keeps {int(keep.sum())} weights but stores {values.numel()}")
            weight = torch.zeros(shape, dtype=getattr(torch, dtype))
            weight[keep] = values.to(weight.dtype)
            state[name], keeps[name] = weight, keep
        elif f"dense/{name}" in tensors:
            state[name] = tensors[f"dense/{name}"]
        else:
            raise TicketFileError(f"{path}: tensor {name!r} is missing")
    return state, Mask(keeps)


def load_ticket(model: nn.Module, path: str | Path) -> Mask:
    """Load a compact ticket into `model` (the same architecture) in place; returns its mask.

    Args:
        model: a fresh model of the ticket's architecture.
        path: a file written by `export_ticket`.

    Returns:
        The ticket's `Mask`; `model` now holds the masked weights.

    Example:
        >>> mask = load_ticket(MyNet(), "ticket.safetensors")  # doctest: +SKIP
    """
    state, mask = read_ticket(path)
    expected = model.state_dict()
    wrong = sorted(set(state) ^ set(expected)) or [n for n in state if state[n].shape != expected[n].shape]
    if wrong:
        raise TicketFileError(f"{path}: does not fit this model ({type(model).__name__}): tensors {wrong[:5]} "
                              "are missing, extra or of another shape")
    model.load_state_dict(state)
    return mask


def payload_bytes(mask: Mask, state: Mapping[str, torch.Tensor], value_bits: int = 32) -> int:
    """Tensor bytes of a compact ticket: per masked layer ceil(n/8) mask bytes + kept·value_bits/8, plus the
    dense bytes of every entry of the state dict `state` that the mask does not cover."""
    masked = sum(math.ceil(keep.numel() / 8) + keep.sum().item() * value_bits // 8 for keep in mask.values())
    return int(masked + sum(t.numel() * t.element_size() for n, t in state.items() if n not in mask))


def predicted_fraction(density: float, value_bits: int = 32) -> float:
    """Compact size of the masked weights over their dense float32 size: (1 + value_bits·density) / 32."""
    return (1 + value_bits * density) / 32


def header_bytes(path: str | Path) -> int:
    """Bytes of a safetensors file before its tensor data: the 8-byte length field plus the JSON header."""
    with open(path, "rb") as handle:
        return 8 + int.from_bytes(handle.read(8), "little")


def gzip_bytes(path: str | Path) -> int:
    """Size of the file gzip-compressed (level 9, no timestamp: deterministic)."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))


def save_state_dict(model: nn.Module, path: str | Path) -> int:
    """Write the model's state dict (on the CPU) with torch.save, the usual dense checkpoint; returns its bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
    return path.stat().st_size


def storage(model: nn.Module, mask: Mask, folder: str | Path) -> dict[str, int]:
    """Bytes on disk of one ticket, written into `folder` (fixed file names: a second call overwrites): its
    dense float32 state dict (torch.save) and its compact file with float32 and with float16 values, each also
    gzipped; `formula` is `payload_bytes` (float32 values), `compact_header` the safetensors header."""
    folder = Path(folder)
    row = {"dense": save_state_dict(model, folder / "dense.pt")}
    row["dense_gzip"] = gzip_bytes(folder / "dense.pt")
    for dtype, key in [("float32", "compact"), ("float16", "compact16")]:
        path = folder / f"{key}.safetensors"
        row[key] = export_ticket(model, mask, path, dtype)
        row[f"{key}_gzip"] = gzip_bytes(path)
        row[f"{key}_header"] = header_bytes(path)
    row["formula"] = payload_bytes(mask, model.state_dict())
    return row



def pruned_exactly_zero(state: Mapping[str, torch.Tensor], mask: Mask) -> bool:
    """Whether every weight `mask` prunes is already exactly zero in `state` (IMP holds them there)."""
    return all(bool((state[name][~keep] == 0).all()) for name, keep in mask.items())


def storage_checks(storage: list[dict], zero_pruned: list[bool]) -> dict[str, bool]:
    """06's identity checks over every stored ticket: each reloaded bit for bit, each pruned weight exactly zero."""
    return {"round_trip_bit_exact": all(bool(r["bit_exact"]) for r in storage),
            "pruned_weights_exactly_zero": all(zero_pruned)}


def stored_ticket(model: nn.Module, mask: Mask, fresh: nn.Module, folder: str | Path) -> dict:
    """`storage` of a ticket, plus `bit_exact`: whether its compact file reloads into `fresh` (the same
    architecture, which then holds the reload) as the same mask and the same tensors, bit for bit."""
    row = storage(model, mask, folder)
    same_mask = load_ticket(fresh, Path(folder) / "compact.safetensors") == mask
    row["bit_exact"] = same_mask and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                           fresh.state_dict().values()))
    return row

# --- inference forms --------------------------------------------------------------------------------
def _to_sparse(weight: torch.Tensor, layout: str, block: int = 4) -> torch.Tensor:
    """`weight` (2-D) as a CSR tensor, or BSR with square blocks (`_square_block`); torch's beta warning muted."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        if layout == "csr":
            return weight.to_sparse_csr()
        if layout == "bsr":
            side = _square_block(*weight.shape, block)
            return weight.to_sparse_bsr((side, side))
    raise ValueError(f"layout must be 'csr' or 'bsr', got {layout!r}")


def _square_block(rows: int, cols: int, block: int) -> int:
    """The largest square block ≤ `block` dividing both sides (torch's CPU BSR kernels need square blocks)."""
    return math.gcd(math.gcd(rows, cols), block)


class SparseLinear(nn.Module):
    """A Linear whose weight is a CSR (or BSR) tensor: y = x Wᵀ + b on torch's sparse CPU kernels."""

    def __init__(self, linear: nn.Linear, layout: str = "csr", block: int = 4):
        super().__init__()
        self.weight = _to_sparse(linear.weight.detach(), layout, block)
        self.layout, self.in_features, self.out_features = layout, linear.in_features, linear.out_features
        bias = linear.bias.detach() if linear.bias is not None else torch.zeros(linear.out_features)
        self.bias = bias.unsqueeze(1).clone()  # (out, 1): broadcast over the batch in addmm

    def stored(self) -> int:
        """Weight values the kernel multiplies: the nonzeros (CSR) or every element of the stored blocks (BSR)."""
        return self.weight.values().numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        out = torch.addmm(self.bias, self.weight, flat.t()).t()  # (W xᵀ + b)ᵀ: the sparse operand goes first
        return out.reshape(*x.shape[:-1], self.out_features)


class SparseConv2d(nn.Module):
    """A Conv2d (groups = 1) lowered to im2col (`F.unfold`) and a CSR matmul: torch has no sparse conv on CPU."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise TypeError("SparseConv2d lowers groups=1 convolutions with numeric zero padding only")
        self.weight = _to_sparse(conv.weight.detach().flatten(1), "csr")  # (out, in·kh·kw)
        self.bias = None if conv.bias is None else conv.bias.detach().view(1, -1, 1, 1).clone()
        self.out_channels = conv.out_channels
        self.geometry = dict(kernel_size=conv.kernel_size, dilation=conv.dilation, padding=conv.padding,
                             stride=conv.stride)

    def stored(self) -> int:
        return self.weight.values().numel()

    def _out_size(self, h: int, w: int) -> tuple[int, int]:
        g = self.geometry
        return tuple((size + 2 * g["padding"][i] - g["dilation"][i] * (g["kernel_size"][i] - 1) - 1) // g["stride"][i] + 1
                     for i, size in enumerate((h, w)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        cols = F.unfold(x, **self.geometry)  # (n, in·kh·kw, positions)
        out = torch.sparse.mm(self.weight, cols.transpose(0, 1).reshape(cols.shape[1], -1))  # (out, n·positions)
        out = out.view(self.out_channels, n, -1).transpose(0, 1).reshape(n, self.out_channels, *self._out_size(h, w))
        return out if self.bias is None else out + self.bias


def sparse_model(model: nn.Module, layout: str = "csr", block: int = 4, conv: bool = False) -> nn.Module:
    """A copy of `model` (eval mode) whose Linear layers (and Conv2d layers, if `conv`) run on sparse kernels.

    Feed it the masked model: the pruned weights must already be zero (`Mask.apply`).

    Args:
        model: the masked model.
        layout: "csr", "coo" or "bsr" (blocks of `block`).
        block: the BSR block size.
        conv: also replace Conv2d layers.

    Returns:
        The sparse copy (the original is unchanged).

    Example:
        >>> fast = sparse_model(mask.apply(model))  # doctest: +SKIP
    """
    new = copy.deepcopy(model).eval()
    for parent in list(new.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, SparseLinear(child, layout, block))
            elif conv and isinstance(child, nn.Conv2d):
                setattr(parent, name, SparseConv2d(child))
    return new


def sparse_conv_support() -> str:
    """Whether torch runs a convolution with a sparse weight on the CPU: its own answer, as text."""
    weight = torch.zeros(2, 1, 3, 3)
    weight[0, 0, 1, 1] = 1.0
    messages = []
    for layout, sparse in [("COO", weight.to_sparse()), ("CSR", weight.flatten(1).to_sparse_csr())]:
        try:
            F.conv2d(torch.ones(1, 1, 4, 4), sparse)
            messages.append(f"{layout}: supported")
        except (RuntimeError, TypeError, NotImplementedError) as error:
            messages.append(f"{layout}: refused ({str(error).splitlines()[0]})")
    return "; ".join(messages)


@torch.no_grad()
def max_relative_error(form: nn.Module, reference: nn.Module, x: torch.Tensor) -> tuple[float, bool]:
    """(max |form(x) − reference(x)| / max |reference(x)|, whether every prediction (argmax) agrees), in eval mode."""
    form.eval()
    reference.eval()
    ref, out = reference(x), form(x)
    return float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-30)), bool((out.argmax(1) == ref.argmax(1)).all())


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> float:
    """Fraction of `x` (on the CPU) the model classifies as `y`, in eval mode (any form: sparse modules hold
    no parameters, so `train.evaluate` cannot place them)."""
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(y), batch_size))
    return correct / max(len(y), 1)


SPARSE_MODULES = (SparseLinear, SparseConv2d)


def resident_bytes(model: nn.Module) -> int:
    """Bytes the model's weights occupy in memory: parameters and buffers, plus each sparse module's
    values, index arrays (int64) and bias."""
    total = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    for module in model.modules():
        if isinstance(module, SPARSE_MODULES):
            w = module.weight
            parts = [w.values(), w.crow_indices(), w.col_indices()] + ([module.bias] if module.bias is not None else [])
            total += sum(p.numel() * p.element_size() for p in parts)
    return total


# --- cost -------------------------------------------------------------------------------------------
@torch.no_grad()
def counted_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one eval-mode forward pass on `x`, 2 per multiply-add, bias adds not counted.

    Dense ops as `FlopCounterMode` counts them. For each sparse module, whatever the counter booked
    during its call (it may count a sparse matmul as dense, by shape, or not at all) is replaced by
    2 × its stored values × the columns it multiplies: the multiply-adds its kernel performs.
    """
    booked, own = [], []

    def before(module: nn.Module, inputs: tuple) -> None:
        booked.append(-counter.get_total_flops())

    def after(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        booked[-1] += counter.get_total_flops()
        columns = (inputs[0].numel() // module.in_features if isinstance(module, SparseLinear)
                   else output.shape[0] * output[0, 0].numel())
        own.append(2 * module.stored() * columns)

    counter = FlopCounterMode(display=False)
    sparse = [m for m in model.modules() if isinstance(m, SPARSE_MODULES)]
    handles = [m.register_forward_pre_hook(before) for m in sparse] + [m.register_forward_hook(after) for m in sparse]
    try:
        with training_mode(model, False), counter:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return int(counter.get_total_flops()) - sum(booked) + sum(own)


def estimated_joules(flops: float) -> float:
    """Arithmetic energy estimate of `flops` (2 per multiply-add) from Horowitz's 45 nm figures (`ENERGY_SOURCE`)."""
    return flops / 2 * PJ_PER_FP32_MAC * 1e-12


def rapl_counters(root: str | Path = "/sys/class/powercap") -> dict[str, Path]:
    """Readable RAPL package energy counters {domain name: energy_uj file}; empty where none is readable."""
    found = {}
    for zone in sorted(Path(root).glob("intel-rapl:*")):
        if zone.name.count(":") != 1:  # sub-zones (core, uncore, dram) are inside the package total
            continue
        counter = zone / "energy_uj"
        try:
            int(counter.read_text())
        except (OSError, ValueError):
            continue
        name = (zone / "name").read_text().strip() if (zone / "name").exists() else zone.name
        found[f"{zone.name} ({name})"] = counter
    return found


def _read_uj(counter: Path) -> int:
    return int(counter.read_text())


def measured_joules(fn: Callable[[], object], counters: Mapping[str, Path], min_seconds: float = 0.5) -> float:
    """Joules per call of `fn` from RAPL package counters: calls repeated for `min_seconds`, counter wrap-around
    handled. The package's whole energy: idle power and other processes included."""
    if not counters:
        raise ValueError("no readable RAPL counter: report an estimate instead")
    wraps = {}
    for name, counter in counters.items():
        limit = counter.with_name("max_energy_range_uj")
        wraps[name] = int(limit.read_text()) if limit.exists() else 2 ** 32
    before = {name: _read_uj(c) for name, c in counters.items()}
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    used = 0
    for name, counter in counters.items():
        delta = _read_uj(counter) - before[name]
        used += delta + wraps[name] if delta < 0 else delta
    return used * 1e-6 / calls


@torch.inference_mode()
def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


@dataclass
class Timing:
    """Interleaved latency samples of some forms (of the attempt kept) and the contention around every attempt."""

    samples: dict[str, list[float]]
    contention: contention.Attempts


def _attempt(timers: Mapping[str, benchmark.Timer], number: Mapping[str, int], repeats: int
             ) -> tuple[dict[str, list[float]], dict[str, contention.Window], contention.Window]:
    """One attempt: `repeats` samples per form, the forms in turns, each sample bracketed by contention marks;
    the samples, each form's windows pooled and the attempt's whole window."""
    samples: dict[str, list[float]] = {name: [] for name in timers}
    windows = {name: contention.Window() for name in timers}
    begun = contention.Mark.now()
    for _ in range(repeats):
        for name, timer in timers.items():
            start = contention.Mark.now()
            samples[name].append(timer.timeit(number[name]).mean)
            windows[name] = windows[name] + start.to(contention.Mark.now())
    return samples, windows, begun.to(contention.Mark.now())


def latency_timing(forms: Mapping[str, nn.Module], x: torch.Tensor, repeats: int, threads: int,
                   min_seconds: float = 0.01, warmup: int = 2, attempts: int = contention.ATTEMPTS) -> Timing:
    """Seconds per forward pass of each form on the batch `x`: `repeats` samples each, taken in turns,
    re-timed while the machine was busy (`contention`'s rule, at most `attempts` attempts).

    Each sample is a `torch.utils.benchmark.Timer` (on `threads` threads) timing enough passes to last
    `min_seconds` (at least one), calibrated once per form after `warmup` passes; the forms take turns
    sample by sample, so a slow spell of the machine hits all alike and the i-th samples form a pair.
    """
    modes = {name: model.training for name, model in forms.items()}
    for model in forms.values():
        model.eval()
    timers = {name: benchmark.Timer("forward(model, x)", globals={"forward": _forward, "model": m, "x": x},
                                    num_threads=threads) for name, m in forms.items()}
    number = {}
    for name, timer in timers.items():
        timer.timeit(warmup)
        once = timer.timeit(1).mean
        number[name] = max(1, math.ceil(min_seconds / max(once, 1e-9)))
    samples, attempted = contention.retimed(lambda: _attempt(timers, number, repeats), attempts)
    for name, model in forms.items():
        model.train(modes[name])
    return Timing(samples, attempted)


def latency_samples(forms: Mapping[str, nn.Module], x: torch.Tensor, repeats: int, threads: int,
                    min_seconds: float = 0.01, warmup: int = 2) -> dict[str, list[float]]:
    """The samples of `latency_timing` alone (its contention dropped)."""
    return latency_timing(forms, x, repeats, threads, min_seconds, warmup).samples


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile) of the samples."""
    q1, median, q3 = np.percentile(np.asarray(samples, dtype=float), [25, 50, 75])
    return float(q1), float(median), float(q3)


@dataclass
class Crossover:
    """Where a form's latency ratio to dense crosses 1, scanning from the sparsest density measured."""

    density: float | None  # below this density the form is faster; None: it never is at the densities measured
    how: str  # "interpolated", "never", "all" (faster at every density measured)


def crossover_density(densities: Sequence[float], ratios: Sequence[float]) -> Crossover:
    """The density below which `ratios` (form / dense latency, e.g. medians) stay under 1.

    From the sparsest density up, the first density whose ratio is ≥ 1 ends the run; the crossing is
    interpolated linearly in (log density, log ratio) between it and the last density under 1.
    """
    if len(densities) != len(ratios) or not densities:
        raise ValueError("need one ratio per density, at least one")
    points = sorted(zip(densities, ratios))
    if points[0][1] >= 1:
        return Crossover(None, "never")
    for (d0, r0), (d1, r1) in zip(points, points[1:]):
        if r1 >= 1:
            t = -math.log(r0) / (math.log(r1) - math.log(r0)) if r1 != r0 else 0.0
            return Crossover(math.exp(math.log(d0) + t * (math.log(d1) - math.log(d0))), "interpolated")
    return Crossover(points[-1][0], "all")


# --- a study of forms: checked, timed side by side, counted -----------------------------------------
@dataclass
class Forms:
    """The forms of one network to time together, each with its metadata and, for a form that is not
    its own reference, the check of its outputs against its masked dense reference (`max_relative_error`)."""

    modules: dict[str, nn.Module] = field(default_factory=dict)
    meta: dict[str, dict] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)

    def add(self, key: str, module: nn.Module, reference: nn.Module | None = None, x: torch.Tensor | None = None,
            **info) -> None:
        """Register `module` as `key` with `info` (model, form, percent, ...); check it when `reference` is given."""
        self.modules[key], self.meta[key] = module, info
        if reference is not None:
            error, agree = max_relative_error(module, reference, x)
            self.checks.append({"network": info["model"], "form": info["form"], "% weights": info["percent"],
                                "max |Δ| / max |y|": error, "predictions agree": agree,
                                "within tolerance": error <= OUTPUT_RTOL})


def time_forms(groups: Sequence[tuple[Forms, torch.Tensor]], batch_sizes: Sequence[int], threads: Mapping[int, int],
               repeats: int, min_seconds: float) -> tuple[list[dict], dict[str, float]]:
    """Latency rows (a form's metadata, key, batch, threads, its `latency_timing` samples and `contention`) for
    every batch size and thread setting (`threads`: the setting as asked → the count used), each group's forms timed in turns
    on the first `batch` rows of its inputs; and the wall seconds each setting took."""
    rows, wall = [], {}
    for batch in batch_sizes:
        for asked, count in threads.items():
            begun = time.perf_counter()
            for forms, x in groups:
                timed = latency_timing(forms.modules, x[:batch].contiguous(), repeats, count, min_seconds)
                rows += [{**forms.meta[k], "key": k, "batch": batch, "threads": asked, "seconds": s,
                          "contention": timed.contention.record(k)} for k, s in timed.samples.items()]
            wall[f"batch {batch}, {count} thread(s)"] = time.perf_counter() - begun
    return rows, wall


def ratios_to_dense(rows: Sequence[Mapping], row: Mapping) -> list[float]:
    """Per repeat, `row`'s time over the time of its network's dense form at the same batch and threads."""
    dense = next(r for r in rows if r["model"] == row["model"] and r["form"] == "dense"
                 and r["batch"] == row["batch"] and r["threads"] == row["threads"])
    return [a / b for a, b in zip(row["seconds"], dense["seconds"])]


def crossovers(rows: Sequence[Mapping], model: str, layouts: Sequence[str], batch_sizes: Sequence[int],
               threads: Mapping[int, int]) -> dict[str, dict]:
    """Per layout, batch and thread setting: where `model`'s median latency ratio to dense crosses 1
    (`crossover_density` over the densities timed)."""
    found = {}
    for batch in batch_sizes:
        for asked, count in threads.items():
            for layout in layouts:
                points = [(r["percent"] / 100, quartiles(ratios_to_dense(rows, r))[1]) for r in rows
                          if r["model"] == model and r["form"] == layout and r["batch"] == batch
                          and r["threads"] == asked]
                cross = crossover_density(*zip(*points))
                found[f"{layout}, batch {batch}, {count} thread(s)"] = {
                    "layout": layout, "batch": batch, "threads": asked, "density": cross.density, "how": cross.how}
    return found


def compute_rows(groups: Sequence[tuple[Forms, torch.Tensor]]) -> list[dict]:
    """Per form: FLOPs of one input (its group's first row), resident bytes, and the estimated joules."""
    rows = []
    for forms, x in groups:
        for key, module in forms.modules.items():
            flops = counted_flops(module, x[:1])
            rows.append({**forms.meta[key], "key": key, "flops": flops, "resident_bytes": resident_bytes(module),
                         "estimated_joules": estimated_joules(flops)})
    return rows


def measure_energy(rows: list[dict], groups: Mapping[str, tuple[Forms, torch.Tensor]], counters: Mapping[str, Path],
                   threads: int) -> None:
    """Add `measured_joules` per image to each compute row (RAPL `counters`, on `threads` threads), timing its
    form on its group's whole input batch (`groups`: the rows' model name → forms and inputs)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for row in rows:
            forms, x = groups[row["model"]]
            module, batch = forms.modules[row["key"]], x.contiguous()
            with torch.inference_mode():
                row["measured_joules"] = measured_joules(lambda: module(batch), counters) / len(batch)
    finally:
        torch.set_num_threads(previous)
