"""The compact ticket file: a checked safetensors checkpoint holding packed mask bits and only the kept values.

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
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ticketlib.core.masks import Mask



FORMAT = "ticketlib.ticket/1"
VALUE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


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

