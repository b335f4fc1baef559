"""ticketlib.core.ticketfile: the compact ticket file (bit-exact round trip, the byte formula, refusal of corrupt,
truncated, edited or foreign files), the storage measurements and their checks."""
import json
import math

import pytest
import torch
from safetensors import safe_open

from ticketlib.core import models
from ticketlib.core import pruning
from ticketlib.core import scores
from ticketlib.core import ticketfile
from ticketlib.core.masks import Mask
from test_deploy import equal_states, lenet_ticket

# --- the compact file -------------------------------------------------------------------------------
def test_bits_pack_eight_to_a_byte_and_unpack() -> None:
    keep = torch.rand(7, 13, generator=torch.Generator().manual_seed(0)) < 0.3
    bits = ticketfile.pack_bits(keep)
    assert bits.dtype == torch.uint8 and bits.numel() == math.ceil(91 / 8)
    assert torch.equal(ticketfile.unpack_bits(bits, (7, 13)), keep)


@pytest.mark.parametrize("density", [1.0, 0.2, 0.036, 0.0])
def test_round_trip_is_bit_exact_and_the_file_size_is_the_formula_plus_the_header(tmp_path, density) -> None:
    model, mask = lenet_ticket(density)
    path = tmp_path / "ticket.safetensors"
    size = ticketfile.export_ticket(model, mask, path)
    assert size == path.stat().st_size
    other = {n: t for n, t in model.state_dict().items() if n not in mask}
    kept = mask.num_kept()
    by_hand = sum(math.ceil(k.numel() / 8) for k in mask.values()) + 4 * kept + sum(4 * t.numel() for t in other.values())
    assert ticketfile.payload_bytes(mask, model.state_dict()) == by_hand
    assert size == ticketfile.header_bytes(path) + by_hand
    fresh = models.build("lenet_300_100", (1, 28, 28), 10)
    loaded = ticketfile.load_ticket(fresh, path)
    assert loaded == mask and equal_states(fresh, model)


def test_the_formula_is_one_bit_plus_32_density_bits_per_weight() -> None:
    assert ticketfile.predicted_fraction(0.05) == pytest.approx((1 + 32 * 0.05) / 32)
    assert ticketfile.predicted_fraction(0.05, value_bits=16) == pytest.approx((1 + 16 * 0.05) / 32)
    model, mask = lenet_ticket(0.05)
    masked = sum(ticketfile.payload_bytes(Mask({n: k}), {}) for n, k in mask.items())
    assert masked == pytest.approx(4 * mask.num_total() * ticketfile.predicted_fraction(mask.density()), abs=len(mask))


def test_float16_values_halve_the_value_bytes_and_round_like_half(tmp_path) -> None:
    model, mask = lenet_ticket(0.2)
    full = ticketfile.export_ticket(model, mask, tmp_path / "a.safetensors")
    half = ticketfile.export_ticket(model, mask, tmp_path / "b.safetensors", values_dtype="float16")
    assert full - half == pytest.approx(2 * mask.num_kept(), abs=200)  # the headers differ by a few bytes
    state, loaded = ticketfile.read_ticket(tmp_path / "b.safetensors")
    assert loaded == mask
    for name in mask:
        assert state[name].dtype == torch.float32 and torch.equal(state[name], model.state_dict()[name].half().float())
    with pytest.raises(ValueError, match="values_dtype"):
        ticketfile.export_ticket(model, mask, tmp_path / "c.safetensors", values_dtype="int8")


def test_export_stores_the_masked_model_and_everything_else_of_the_state_dict(tmp_path) -> None:
    torch.manual_seed(0)
    model = models.build("vgg11", (1, 28, 28), 10, width=0.0625).eval()  # BN buffers, a 0-d num_batches_tracked
    mask = pruning.prune_to_density(scores.magnitude(model, Mask.ones_like(model)), Mask.ones_like(model), 0.3)
    ticketfile.export_ticket(model, mask, tmp_path / "t.safetensors")  # pruned weights not zeroed: export drops them
    fresh = models.build("vgg11", (1, 28, 28), 10, width=0.0625)
    ticketfile.load_ticket(fresh, tmp_path / "t.safetensors")
    assert equal_states(fresh, mask.apply(model))
    with safe_open(str(tmp_path / "t.safetensors"), framework="pt") as handle:
        assert json.loads(handle.metadata()["ticketlib"])["format"] == ticketfile.FORMAT
        assert "dense/features.1.running_var" in handle.keys() and "features.0.weight/bits" in handle.keys()


def test_truncated_file_is_refused_naming_the_file(tmp_path) -> None:
    model, mask = lenet_ticket(0.1)
    path = tmp_path / "ticket.safetensors"
    ticketfile.export_ticket(model, mask, path)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 20, 4):
        path.write_bytes(data[:cut])
        with pytest.raises(ticketfile.TicketFileError, match="ticket.safetensors"):
            ticketfile.load_ticket(models.build("lenet_300_100", (1, 28, 28), 10), path)


def test_a_flipped_byte_anywhere_is_refused_never_loaded(tmp_path) -> None:
    model, mask = lenet_ticket(0.1)
    path = tmp_path / "ticket.safetensors"
    ticketfile.export_ticket(model, mask, path)
    data = bytearray(path.read_bytes())
    header = ticketfile.header_bytes(path)
    for where in (header + 3, header + 500, len(data) - 2, (header + len(data)) // 2):  # bits, values, biases
        corrupt = bytearray(data)
        corrupt[where] ^= 0x10
        path.write_bytes(bytes(corrupt))
        with pytest.raises(ticketfile.TicketFileError, match=r"ticket\.safetensors.*checksum"):
            ticketfile.read_ticket(path)
    corrupt = bytearray(data)
    corrupt[12] ^= 0x01  # inside the JSON header
    path.write_bytes(bytes(corrupt))
    with pytest.raises(ticketfile.TicketFileError, match="ticket.safetensors"):
        ticketfile.read_ticket(path)


def test_an_edited_description_is_refused(tmp_path) -> None:
    from safetensors.torch import save_file

    model, mask = lenet_ticket(0.1)
    tensors, meta = ticketfile.ticket_tensors(model.state_dict(), mask)
    info = json.loads(meta["ticketlib"])
    info["masked"]["fc1.weight"][0] = [784, 300]  # transposed: the bit count still fits, the weights would not
    save_file(tensors, str(tmp_path / "edited.safetensors"), metadata={"ticketlib": json.dumps(info)})
    with pytest.raises(ticketfile.TicketFileError, match=r"edited\.safetensors.*checksum"):
        ticketfile.read_ticket(tmp_path / "edited.safetensors")


def test_not_a_ticket_or_another_model_is_refused(tmp_path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ticketfile.TicketFileError, match="plain.safetensors.*not a ticketlib.ticket/1"):
        ticketfile.read_ticket(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ticketfile.TicketFileError, match="junk.safetensors"):
        ticketfile.read_ticket(tmp_path / "junk.safetensors")
    with pytest.raises(ticketfile.TicketFileError, match="missing.safetensors"):
        ticketfile.read_ticket(tmp_path / "missing.safetensors")
    model, mask = lenet_ticket(0.1)
    ticketfile.export_ticket(model, mask, tmp_path / "lenet.safetensors")
    with pytest.raises(ticketfile.TicketFileError, match="lenet.safetensors.*does not fit"):
        ticketfile.load_ticket(models.build("conv2", (3, 32, 32), 10), tmp_path / "lenet.safetensors")


def test_storage_row(tmp_path) -> None:
    model, mask = lenet_ticket(0.036)
    row = ticketfile.storage(model, mask, tmp_path)
    assert row["compact"] == row["formula"] + row["compact_header"]
    assert row["compact16"] < row["compact"] < 0.1 * row["dense"]
    assert all(row[f"{k}_gzip"] > 0 for k in ("dense", "compact", "compact16"))
    assert row["dense_gzip"] < row["dense"]  # the zeros compress: gzip does part of what the format does
    assert ticketfile.storage(model, mask, tmp_path) == row  # deterministic



def test_stored_ticket_reloads_bit_exactly_and_says_so(tmp_path) -> None:
    model, mask = lenet_ticket(0.05)
    fresh = models.build("lenet_300_100", (1, 28, 28), 10)
    row = ticketfile.stored_ticket(model, mask, fresh, tmp_path)
    assert row["bit_exact"] is True and equal_states(model, fresh)
    assert {k: v for k, v in row.items() if k != "bit_exact"} == ticketfile.storage(model, mask, tmp_path)
    flipped = {k: v.clone() for k, v in mask.items()}
    name = next(iter(flipped))
    kept = int(flipped[name].view(-1).nonzero()[0])
    flipped[name].view(-1)[kept] = False  # a kept, non-zero weight the file now drops: the reload differs
    other = Mask(flipped)
    assert ticketfile.stored_ticket(model, other, models.build("lenet_300_100", (1, 28, 28), 10), tmp_path)["bit_exact"] is False


def test_pruned_exactly_zero() -> None:
    model, mask = lenet_ticket(0.1)
    assert ticketfile.pruned_exactly_zero(model.state_dict(), mask)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    name = next(iter(mask.keys()))
    state[name][~mask[name]] = 1e-30  # a pruned weight that is not exactly zero
    assert not ticketfile.pruned_exactly_zero(state, mask)


def test_storage_checks_fail_on_one_bad_ticket() -> None:
    from ticketlib.core import ticketfile as d

    good = [{"bit_exact": True}, {"bit_exact": True}]
    assert d.storage_checks(good, [True, True]) == {"round_trip_bit_exact": True, "pruned_weights_exactly_zero": True}
    assert d.storage_checks(good + [{"bit_exact": False}], [True])["round_trip_bit_exact"] is False
    assert d.storage_checks(good, [True, False])["pruned_weights_exactly_zero"] is False
