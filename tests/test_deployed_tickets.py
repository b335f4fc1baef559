"""06's tickets module (`studies.deployment.tickets`): the early-bird masks it measures and the forms it builds."""
import torch

from ticketlib.core import models
from ticketlib.studies.deployment import tickets
from ticketlib.studies.early_tickets.study import ticket_mask


def _vgg() -> torch.nn.Module:
    torch.manual_seed(0)
    model = models.build("vgg11", (1, 28, 28), 10, width=0.0625).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.1, 1.0)  # distinct |γ|: a well-defined channel threshold
    return model


def test_earlybird_masks_take_the_detection_epochs_mask_else_the_trained_networks() -> None:
    net = _vgg()
    at_epoch = {0.3: [ticket_mask(net, 0.1), ticket_mask(net, 0.3)], 0.5: [ticket_mask(net, 0.2)]}
    found = {"detected": {0.3: 2, 0.5: None}, "epochs": [1, 2], "masks": at_epoch}
    masks = tickets.earlybird_masks(found, [0.3, 0.5], net)
    assert list(masks) == [0.3, 0.5]
    assert masks[0.3] is at_epoch[0.3][1]  # the mask of the detection epoch (epochs.index(2) == 1)
    expected = ticket_mask(net, 0.5)  # not detected: the fully trained network's, as 04 retrains it
    assert all(torch.equal(masks[0.5][k], expected[k]) for k in expected)


def test_earlybird_forms_are_checked_against_their_references() -> None:
    net = _vgg()
    from ticketlib.core import slim

    masks = {0.5: ticket_mask(net, 0.5)}
    slim_nets = {0.5: slim.slim(net, masks[0.5]).eval()}
    x = torch.randn(4, 1, 28, 28)
    forms = tickets.earlybird_forms(net, masks, slim_nets, {0.5: 40.0}, [21.1], x)
    assert list(forms.modules) == ["dense", "masked p=0.5", "slim p=0.5", "conv csr 21.1%"]
    assert [c["form"] for c in forms.checks] == ["slim", "conv_csr"]
    assert all(c["within tolerance"] and c["predictions agree"] for c in forms.checks)
    assert abs(forms.meta["conv csr 21.1%"]["percent"] - 21.1) < 0.5  # layerwise magnitude at 21.1% kept
