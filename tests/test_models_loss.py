"""JDE loss: finite and decreasing when overfitting, identity sampling at the right cells, weighting modes."""
import pytest
import torch

from mot_kd.errors import InputError
from mot_kd.models import JDELoss, build_model
from mot_kd.models.embedding_head import sample_embeddings

# two 128x96 images; [batch_idx, cls, identity, cx, cy, w, h] normalised by W=128, H=96
TARGETS = torch.tensor([
    [0, 0, 0, 0.25, 0.50, 0.15, 0.60],
    [0, 0, 1, 0.70, 0.45, 0.20, 0.70],
    [1, 0, 2, 0.40, 0.55, 0.25, 0.60],
    [1, 0, -1, 0.80, 0.50, 0.12, 0.40],
])


@pytest.fixture(scope="module")
def nano():
    torch.manual_seed(0)
    return build_model("yolov5n", id_dim=128)


def synthetic_images():
    """Bright rectangles where the targets are, so the detector has something to fit."""
    images = torch.full((2, 3, 96, 128), 0.3)
    for b, _, _, cx, cy, w, h in TARGETS.tolist():
        x0, x1 = int((cx - w / 2) * 128), int((cx + w / 2) * 128)
        y0, y1 = int((cy - h / 2) * 96), int((cy + h / 2) * 96)
        images[int(b), :, y0:y1, x0:x1] = torch.tensor([0.9, 0.2, 0.1]).view(3, 1, 1) * (1 + 0.1 * cx)
    return images


def test_loss_finite_and_decreasing_when_overfitting():
    torch.manual_seed(0)
    model = build_model("yolov5n", id_dim=128).train()
    criterion = JDELoss(model, num_ids=3, id_weight=1.0)
    optimizer = torch.optim.Adam([*model.parameters(), *criterion.parameters()], lr=2e-3)
    images, history = synthetic_images(), []
    for _ in range(8):
        total, parts = criterion(model(images), TARGETS)
        assert torch.isfinite(total) and set(parts) == {"box", "cls", "dfl", "id"}
        assert all(torch.isfinite(v) and not v.requires_grad for v in parts.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append((float(total.detach()), float(parts["id"])))
    assert history[-1][0] < 0.7 * history[0][0]
    assert history[-1][1] < history[0][1]


def test_sample_embeddings_picks_containing_cell():
    emb = torch.zeros(2, 3, 4, 5)  # (B, D, H/8, W/8): channel 0 = b, 1 = row, 2 = column
    emb[1, 0] = 1
    emb[:, 1] = torch.arange(4.0).view(4, 1)
    emb[:, 2] = torch.arange(5.0).view(1, 5)
    xy = torch.tensor([[0.0, 0.0], [7.9, 8.0], [36.0, 20.0], [100.0, -3.0]])
    got = sample_embeddings(emb, torch.tensor([0, 1, 1, 0]), xy, stride=8)
    expected = torch.tensor([[0, 0, 0], [1, 1, 0], [1, 2, 4], [0, 0, 4]], dtype=torch.float32)  # last is clamped
    assert torch.equal(got, expected)


@pytest.mark.parametrize("mode", ["assigned", "center"])
def test_identity_samples_lie_in_their_own_boxes(nano, mode):
    criterion = JDELoss(nano, num_ids=3, id_sampling=mode)
    seen = {}
    original = criterion.identity_loss

    def spy(emb_map, batch_idx, xy, ids):
        seen.update(batch_idx=batch_idx, xy=xy, ids=ids)
        return original(emb_map, batch_idx, xy, ids)

    criterion.identity_loss = spy
    shuffled = TARGETS[[3, 1, 2, 0]]  # targets need not be sorted by image
    criterion(nano(synthetic_images()), shuffled)
    assert set(seen["ids"].tolist()) == {0, 1, 2}  # -1 is never trained
    for b, xy, identity in zip(seen["batch_idx"].tolist(), seen["xy"].tolist(), seen["ids"].tolist()):
        row = next(t for t in TARGETS.tolist() if t[2] == identity)
        assert row[0] == b
        cx, cy, w, h = row[3] * 128, row[4] * 96, row[5] * 128, row[6] * 96
        assert abs(xy[0] - cx) <= w / 2 and abs(xy[1] - cy) <= h / 2
    if mode == "center":
        assert len(seen["ids"]) == 3
    else:
        assert len(seen["ids"]) > 3  # several assigned anchors per box


def test_uncertainty_weighting_learns_task_weights(nano):
    criterion = JDELoss(nano, num_ids=3, id_weighting="uncertainty")
    total, _ = criterion(nano(synthetic_images()), TARGETS)
    total.backward()
    assert criterion.s_det.grad is not None and criterion.s_id.grad is not None
    assert {"classifier.weight", "s_det", "s_id"} == set(criterion.state_dict())


def test_no_known_identity_gives_zero_id_loss(nano):
    criterion = JDELoss(nano, num_ids=3)
    targets = TARGETS.clone()
    targets[:, 2] = -1
    total, parts = criterion(nano(synthetic_images()), targets)
    assert float(parts["id"]) == 0.0 and torch.isfinite(total)
    total, parts = criterion(nano(synthetic_images()), torch.zeros(0, 7))
    assert float(parts["box"]) == 0.0 and float(parts["cls"]) > 0.0


def test_bad_arguments_and_targets(nano):
    with pytest.raises(InputError, match="num_ids"):
        JDELoss(nano, num_ids=1)
    with pytest.raises(InputError, match="id_weighting"):
        JDELoss(nano, num_ids=3, id_weighting="auto")
    criterion = JDELoss(nano, num_ids=3)
    out = nano(synthetic_images())
    with pytest.raises(InputError, match=r"\(M, 7\)"):
        criterion(out, TARGETS[:, :6])
    bad = TARGETS.clone()
    bad[0, 2] = 3
    with pytest.raises(InputError, match="identity"):
        criterion(out, bad)
    bad = TARGETS.clone()
    bad[0, 0] = 2
    with pytest.raises(InputError, match="batch_idx"):
        criterion(out, bad)
