"""Target converters: each foreign batch, built the way its codebase builds it, converts back to our (M, 7)."""
from __future__ import annotations

import pytest
import torch

from mot_kd.errors import InputError
from mot_kd.kd.masks import check_targets
from mot_kd.kd.targets import from_cstrack, from_fairmot, from_jde


def ours() -> torch.Tensor:
    """(M, 7) [batch_idx, cls, identity, cx, cy, w, h]: 2 images, one person without identity."""
    return torch.tensor([[0, 0, 4, 0.30, 0.40, 0.10, 0.30], [0, 0, -1, 0.62, 0.55, 0.08, 0.25],
                         [1, 0, 0, 0.50, 0.50, 0.20, 0.40]])


def test_cstrack_targets_shift_ids_and_drop_none():
    t = ours()
    sots = torch.cat([t[:, :1], torch.where(t[:, 2:3] >= 0, t[:, 2:3] + 1, 0), t[:, 3:]], 1)  # id 0 = none
    assert torch.allclose(from_cstrack(sots), t)
    with pytest.raises(InputError, match=r"from_cstrack: expected \(M, 6\) \[image, id, cx, cy, w, h\].*\(3, 7\)"):
        from_cstrack(t)
    pixels = sots.clone()
    pixels[:, 2:] *= 608
    with pytest.raises(InputError, match="boxes must be finite, normalised to \\[0, 1\\]"):
        from_cstrack(pixels)


def test_jde_padded_batch_keeps_each_images_rows():
    t = ours()
    padded = torch.zeros(2, 4, 6)
    padded[0, :2] = torch.cat([t[:2, 1:3], t[:2, 3:]], 1)
    padded[1, :1] = torch.cat([t[2:, 1:3], t[2:, 3:]], 1)
    lengths = torch.tensor([[2.0], [1.0]])  # JDE's labels_len.unsqueeze(1)
    assert torch.allclose(from_jde(padded, lengths), t)
    assert from_jde(padded, torch.zeros(2)).shape == (0, 7)
    with pytest.raises(InputError, match=r"lengths must be integers in \[0, 4\]"):
        from_jde(padded, torch.tensor([5, 1]))
    with pytest.raises(InputError, match=r"from_jde: expected \(B, N, 6\)"):
        from_jde(t, lengths)


def fairmot_batch(targets: torch.Tensor, batch: int, height: int, width: int, ltrb: bool, k: int = 8) -> dict:
    """Dense targets encoded as FairMOT's JointDataset does (output grid = input / 4)."""
    out = {"hm": torch.zeros(batch, 1, height, width), "ind": torch.zeros(batch, k, dtype=torch.long),
           "wh": torch.zeros(batch, k, 4 if ltrb else 2), "reg": torch.zeros(batch, k, 2),
           "reg_mask": torch.zeros(batch, k, dtype=torch.uint8), "ids": torch.zeros(batch, k, dtype=torch.long)}
    slot = [0] * batch
    for b, _, identity, cx, cy, w, h in targets.tolist():
        b, j = int(b), slot[int(b)]
        cx, cy, w, h = cx * width, cy * height, w * width, h * height
        ct = torch.tensor([min(max(cx, 0), width - 1), min(max(cy, 0), height - 1)])
        ct_int = ct.long()
        out["hm"][b, 0, ct_int[1], ct_int[0]] = 1.0
        out["wh"][b, j] = (torch.tensor([ct[0] - (cx - w / 2), ct[1] - (cy - h / 2), cx + w / 2 - ct[0],
                                         cy + h / 2 - ct[1]]) if ltrb else torch.tensor([w, h]))
        out["ind"][b, j] = ct_int[1] * width + ct_int[0]
        out["reg"][b, j] = ct - ct_int
        out["reg_mask"][b, j] = 1
        out["ids"][b, j] = int(identity)
        slot[b] += 1
    return out


@pytest.mark.parametrize("ltrb", [True, False])
def test_fairmot_dense_batch_converts_back(ltrb):
    t = ours()
    assert torch.allclose(from_fairmot(fairmot_batch(t, 2, 24, 40, ltrb)), t, atol=1e-5)
    bad = fairmot_batch(t, 2, 24, 40, ltrb)
    del bad["reg"]
    with pytest.raises(InputError, match="from_fairmot: expected a FairMOT batch dict.*missing or not tensors: reg"):
        from_fairmot(bad)


def test_kd_targets_check_points_to_the_converter():
    with pytest.raises(InputError, match=r"got \(3, 6\); CSTrack/SOTS .*from_cstrack\(targets\)"):
        check_targets(torch.zeros(3, 6), 2)
    with pytest.raises(InputError, match=r"JDE.s padded .*from_jde\(targets, targets_len\)"):
        check_targets(torch.zeros(2, 3, 6), 2)
    with pytest.raises(InputError, match=r"from_fairmot\(batch\)"):
        check_targets({"hm": torch.zeros(1)}, 2)


def test_jde_empty_batch_gives_no_rows():
    rows = from_jde(torch.zeros(0, 4, 6), torch.zeros(0, 1))
    assert rows.shape == (0, 7) and rows.dtype == torch.float32


def test_fairmot_non_integer_ind_is_an_error():
    batch = fairmot_batch(ours(), 2, 24, 40, ltrb=True)
    batch["ind"] = batch["ind"].float() + 0.5  # .long() would silently move every centre by half a cell
    with pytest.raises(InputError, match=r"^from_fairmot: ind must be an integer tensor \(y \* W \+ x cell indices\), "
                                         r"got torch.float32; expected FairMOT batch dict"):
        from_fairmot(batch)
    batch["ind"] = batch["ind"].int()  # int32 is fine
    assert torch.allclose(from_fairmot(batch), ours(), atol=1e-5)
