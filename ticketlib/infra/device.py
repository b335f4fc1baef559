"""Where units run and under which numerical policy: one home for device handling.

`resolve_device("auto")` picks CUDA when present (and changes nothing); an explicit "cuda" without a GPU is an
error, never a silent fall-back to the CPU (a 160-epoch run must not quietly take days). `set_policy`
fixes the numerics the cache relies on (a unit is a pure function of its key): TF32 off, cuDNN
deterministic and not autotuned, so the same key gives the same payload on the same GPU.
`policy()` says what is in force, for the run record and every unit's metadata.
"""
from __future__ import annotations

import os

import torch

from ticketlib.infra.cores import machine

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")


SUBMIT_ONLY = "TICKETLIB_SUBMIT_ONLY"  # set by the runner on a host without a GPU that sends every unit to a cluster


class DeviceError(RuntimeError):
    """The requested device is not available here."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> cuda if available else cpu; "cuda" without a GPU raises DeviceError. No side effects: the
    numerics policy is set where computing starts (`set_policy`: before every unit in `Cache.cached`, and in each
    notebook's first cell), not by asking where to compute.
    """
    if str(device) == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available() and os.environ.get(SUBMIT_ONLY):
        resolved = torch.device("cpu")  # a host that only submits: its own tensors stay here, units run remotely
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {str(device)!r} was asked for but torch sees no CUDA GPU here "
                          "(use device: cpu or auto, or run on a GPU machine)")
    return resolved


def require(device: str) -> None:
    """Fail fast (before any training) when a run asks for a device this machine lacks."""
    resolve_device(device)


def set_policy(deterministic: bool = True) -> dict:
    """Fix TF32 off and cuDNN deterministic/not benchmarked (no-ops on the CPU); returns `policy()`.

    The CNNs train in float32 without autocast, as the papers reproduced here did (Frankle & Carbin,
    Tanaka et al., You et al.); BERT's precision is its own parameter (`bert.resolve_precision`).
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:  # cuBLAS needs a fixed workspace for reproducible matmuls
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.cuda.is_available():  # CUDA only: the CPU path stays exactly as it was
        cuda_determinism(deterministic)
    return policy()


def cuda_determinism(deterministic: bool = True) -> None:
    """Deterministic CUDA kernels, or an error where an op has none (`torch.use_deterministic_algorithms`), and
    attention through SDPA's math kernel: the flash, memory-efficient and cuDNN backwards accumulate atomically
    (BERT's units would differ run to run, and early-bird's `dense_state_at` retraining would not repeat)."""
    torch.use_deterministic_algorithms(deterministic)
    for enable in (torch.backends.cuda.enable_flash_sdp, torch.backends.cuda.enable_mem_efficient_sdp,
                   torch.backends.cuda.enable_cudnn_sdp):
        enable(not deterministic)


def policy() -> dict:
    """The numerical policy in force (recorded with every run and unit)."""
    return {"tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark, "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            **({"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                "sdpa_fused": torch.backends.cuda.mem_efficient_sdp_enabled()} if torch.cuda.is_available() else {})}


def describe(device: str | torch.device) -> str:
    """A device with its hardware name, e.g. "cuda (NVIDIA H200)" or "cpu (2 cores)": wall times are
    comparable only between units with the same description."""
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        others = gpu_neighbours(resolved)
        shared = f", shared with {others} other process(es)" if others else ""
        return f"cuda ({torch.cuda.get_device_name(resolved)}{shared})"
    return f"cpu ({machine()} cores)"


def gpu_neighbours(device: torch.device) -> int:
    """How many other processes compute on this GPU now (NVML through `torch.cuda.list_gpu_processes`; 0 where
    NVML cannot say). A unit timed beside another notebook or worker gets another description, so `cost_saved`
    refuses to compare its seconds with an unshared unit's."""
    try:
        listing = torch.cuda.list_gpu_processes(device)
    except Exception:  # no NVML (pynvml) here
        return 0
    pids = [line.split()[1] for line in listing.splitlines() if line.strip().startswith("process")]
    return sum(pid != str(os.getpid()) for pid in pids)


def resolve_precision(precision: str, device: str = "auto") -> tuple[str, str]:
    """(precision to run, why): "fp32" and "bf16" as asked; "auto" picks bf16 only with native support.

    Native bf16 is judged by torch's own queries, never by CPU name: on CUDA
    `torch.cuda.is_bf16_supported(including_emulation=False)` (compute capability 8.0 and up); on CPU, oneDNN's bf16 support (`torch.ops.mkldnn._is_mkldnn_bf16_supported`)
    together with an AVX-512 kernel capability (`torch.backends.cpu.get_cpu_capability()`) and no
    `ONEDNN_MAX_CPU_ISA` cap below AVX-512. Elsewhere bf16 autocast is emulated, several times slower than fp32.
    """
    if precision in PRECISIONS:
        return precision, "set in the params"
    if precision != "auto":
        raise ValueError(f"precision must be one of {(*PRECISIONS, 'auto')}, got {precision!r}")
    where = resolve_device(device)
    if where.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)  # V100/T4 emulate it, slowly
        return ("bf16" if native else "fp32"), f"auto: CUDA bf16 support {'found' if native else 'absent'}"
    capability = torch.backends.cpu.get_cpu_capability()
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    try:
        onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn_bf16 = False
    native = onednn_bf16 and capability.startswith("AVX512") and (not isa_cap or "AVX512" in isa_cap or "AMX" in isa_cap)
    why = (f"auto: CPU capability {capability}, oneDNN bf16 {'yes' if onednn_bf16 else 'no'}"
           + (f", ONEDNN_MAX_CPU_ISA={isa_cap}" if isa_cap else "") + f" -> {'native' if native else 'emulated'} bf16")
    return ("bf16" if native else "fp32"), why


_HELD: list = []  # the GPU lock this process holds for its lifetime (see `pin_gpu`)


def pin_gpu(lock_dir: str = "/tmp") -> int | None:
    """Give this process (a notebook under `make -jN`, a pool worker) a GPU of its own when there are several and
    none is chosen yet (CUDA_VISIBLE_DEVICES unset): the first whose lock file is free, held until the process
    ends, then CUDA_VISIBLE_DEVICES names it for this process and what it starts. None where nothing is pinned."""
    import fcntl

    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None or not torch.cuda.is_available():
        return None
    count = torch.cuda.device_count()
    if count < 2:
        return None
    for index in range(count):
        handle = open(os.path.join(lock_dir, f"ticketlib-gpu-{index}.lock"), "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _HELD.append(handle)
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
        return index
    return None  # more processes than GPUs: share (CUDA's default, GPU 0 first)

