import pytest

from automl.data import index
from automl.data.splits import make_splits


def _check(idx, seed, tolerance_points):
    splits = make_splits(idx, seed=seed)
    assert not set(splits.train.patient) & set(splits.val.patient)
    pool = len(splits.train) + len(splits.val)
    assert abs(len(splits.val) / pool - 0.2) <= 0.02 + (0.05 if tolerance_points > 2 else 0)
    whole = idx.table[idx.table.split != "test"].subtype.value_counts(normalize=True)
    val_share = splits.val.subtype.value_counts(normalize=True)
    for kind, share in whole.items():
        assert abs(val_share.get(kind, 0) - share) * 100 <= tolerance_points
    assert splits.test.split.eq("test").all()
    return splits


def test_split_synthetic_is_grouped_and_deterministic(synthetic_data):
    idx = index.scan(synthetic_data)
    a, b = _check(idx, 0, 12), _check(idx, 0, 12)
    assert a.val.path.tolist() == b.val.path.tolist()
    assert a.val.path.tolist() != _check(idx, 1, 12).val.path.tolist()


def test_split_real(real_data):
    idx = index.scan(real_data)
    a = _check(idx, 0, 2)
    assert a.val.path.tolist() == _check(idx, 0, 2).val.path.tolist()
    assert a.val.path.tolist() != _check(idx, 7, 2).val.path.tolist()


def test_bad_fraction(synthetic_data):
    with pytest.raises(ValueError, match="val_fraction"):
        make_splits(index.scan(synthetic_data), val_fraction=0.9)
