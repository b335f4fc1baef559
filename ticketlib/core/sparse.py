"""Inference forms of a ticket: sparse-kernel modules (CSR/BSR/COO) checked against their masked dense reference, and what they keep in memory."""
from __future__ import annotations

import copy
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

# Two float32 computations of the same outputs in another summation order (CSR vs dense, a narrower
# conv) differ by rounding only: about sqrt(n)·eps, at most n·eps ≈ 1e-4 for the n ≈ 800-term sums here.
OUTPUT_RTOL = 1e-4




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
        self.register_buffer("weight", _to_sparse(linear.weight.detach(), layout, block))  # buffers: `.to()`, state_dict
        self.layout, self.in_features, self.out_features = layout, linear.in_features, linear.out_features
        bias = linear.bias.detach() if linear.bias is not None else torch.zeros(linear.out_features)
        self.register_buffer("bias", bias.unsqueeze(1).clone())  # (out, 1): broadcast over the batch in addmm

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
        self.register_buffer("weight", _to_sparse(conv.weight.detach().flatten(1), "csr"))  # (out, in·kh·kw)
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().view(1, -1, 1, 1).clone())
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


SPARSE_MODULES = (SparseLinear, SparseConv2d)


def resident_bytes(model: nn.Module) -> int:
    """Bytes the model's weights occupy in memory: parameters and buffers, plus each sparse module's
    values, index arrays (int64) and bias."""
    sparse = [m for m in model.modules() if isinstance(m, SPARSE_MODULES)]
    counted_below = {id(b) for m in sparse for b in m.buffers(recurse=False)}  # a sparse tensor's numel is its dense size
    total = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()] if id(t) not in counted_below)
    for module in sparse:
        w = module.weight
        parts = [w.values(), w.crow_indices(), w.col_indices()] + ([module.bias] if module.bias is not None else [])
        total += sum(p.numel() * p.element_size() for p in parts)
    return total


