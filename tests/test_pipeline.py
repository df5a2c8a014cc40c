import numpy as np
import pytest
from PIL import Image

from automl.data import index, pipeline


def test_load_images_shape_and_cache(synthetic_data, monkeypatch):
    paths = index.scan(synthetic_data).table.path.tolist()[:20]
    images = pipeline.load_images(paths, 24, progress=False)
    assert images.shape == (20, 24, 24, 1) and images.dtype == np.uint8
    assert images.std() > 0

    # A second load at the same size must come from the disk cache, not decode again.
    def no_decode(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(pipeline, "_decode", no_decode)
    again = pipeline.load_images(paths, 24, progress=False)
    np.testing.assert_array_equal(images, again)


def test_decodes_16bit_and_rgba(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 16, dtype=np.uint16), (16, 1))
    Image.fromarray(ramp).save(tmp_path / "a.png")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "b.png")
    images = pipeline.load_images([tmp_path / "a.png", tmp_path / "b.png"], 16, disk_cache=False,
                                  progress=False)
    assert images[0, 0, 0, 0] < 10 and images[0, 0, -1, 0] > 245  # 16-bit rescaled, not clipped
    assert 40 < images[1].mean() < 80  # red 200 -> grey ~60, alpha ignored


@pytest.mark.parametrize("mode, suffix", [("CMYK", "jpeg"), ("P", "png"), ("LA", "png"), ("1", "png")])
def test_odd_but_valid_modes_decode_as_pil_converts_them(mode, suffix, tmp_path):
    grey = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    path = tmp_path / f"x.{suffix}"
    Image.fromarray(grey).convert(mode).save(path, **({"quality": 95} if suffix == "jpeg" else {}))
    decoded = pipeline.load_images([path], 16, disk_cache=False, progress=False)[0, ..., 0]
    expected = np.asarray(Image.open(path).convert("L"))
    assert np.abs(decoded.astype(int) - expected.astype(int)).mean() < 4


def test_oversample_reaches_parity():
    labels = np.array([0] * 10 + [1] * 30 + [2] * 5)
    order = pipeline.oversample_indices(labels, seed=0)
    assert np.bincount(labels[order]).tolist() == [30, 30, 30]


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_oversampling_balances_every_class_with_the_targets_the_task_trains_on(task):
    import pandas as pd

    from automl.tasks import get_task

    # The shapes met in real use: a (n, 1) float column (binary), one-hot rows (multiclass).
    subtypes = ["normal"] * 10 + ["bacteria"] * 30 + ["virus"] * 5
    table = pd.DataFrame({"subtype": subtypes,
                          "label": ["NORMAL" if s == "normal" else "PNEUMONIA" for s in subtypes]})
    task = get_task(task)
    images = np.arange(len(table), dtype=np.uint8).reshape(-1, 1, 1, 1)
    dataset = pipeline.make_dataset(images, task.targets(table), batch_size=1000, oversample=True)
    seen = np.concatenate([np.round(x.numpy() * 255).astype(int).ravel() for x, _ in dataset])
    counts = np.bincount(task.labels(table)[seen])
    assert counts.min() == counts.max(), counts.tolist()


def test_make_dataset_batches_and_augments():
    images = np.random.default_rng(0).integers(0, 255, (10, 16, 16, 1), dtype=np.uint8)
    targets = np.arange(10, dtype=np.float32)
    plain = list(pipeline.make_dataset(images, targets, batch_size=4))
    assert [len(x) for x, _ in plain] == [4, 4, 2]
    np.testing.assert_allclose(plain[0][0].numpy(), images[:4] / 255.0, atol=1e-6)
    augmented = next(iter(pipeline.make_dataset(images, targets, batch_size=10, training=True,
                                                augment=1.5, seed=1)))[0].numpy()
    assert augmented.min() >= 0 and augmented.max() <= 1
    assert augmented.shape == (10, 16, 16, 1)
