"""Saliency maps and their faithfulness: the deletion test must tell a real map from noise."""

import keras
import numpy as np
import pytest

from automl.evaluation import saliency


def _spot_detector(*, output_list: bool = False):
    """A fixed conv model whose P(pneumonia) is the brightness of the image's top-left corner
    (its output in a one-element list with ``output_list``, as AutoKeras builds its models)."""
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="conv")(inputs)
    corner = keras.layers.Cropping2D(((0, 12), (0, 12)), name="corner")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(corner)
    constant = keras.initializers.Constant
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=constant(8.0),
                                 bias_initializer=constant(-4.0), name="prediction")(pooled)
    return keras.Model(inputs, [outputs] if output_list else outputs)


def test_deletion_test_prefers_the_true_evidence_to_random_and_to_wrong_maps():
    model = _spot_detector()
    x = np.full((6, 16, 16, 1), 0.1, np.float32)
    x[:, :4, :4] = 1.0  # the evidence: a bright top-left corner
    truth = np.zeros((6, 16, 16))
    truth[:, :4, :4] = 1.0
    wrong = truth[:, ::-1, ::-1]
    evidence_first = saliency.deletion_curve(model, x, truth, evaluation="binary")
    wrong_first = saliency.deletion_curve(model, x, wrong, evaluation="binary")
    assert evidence_first[0] == pytest.approx(wrong_first[0])  # nothing deleted yet
    assert evidence_first[1] < wrong_first[1] - 0.2  # the evidence gone after the first 10%
    smooth = saliency.smoothgrad(model, x, evaluation="binary", samples=4)
    assert smooth[:, :4, :4].mean() > 5 * smooth[:, 8:, 8:].mean()
    result = saliency.faithfulness(model, x, evaluation="binary", method="smoothgrad")
    assert result["difference"] > 0.1 and len(result["saliency_curve"]) == saliency.DELETION_STEPS + 1


def test_gradcam_averages_an_ensembles_members_and_panel_picks_each_outcome():
    from automl.evaluation.scored_model import scored_model
    from automl.refit.tta import with_tta

    x = np.random.default_rng(0).random((3, 16, 16, 1)).astype(np.float32)
    # Plain members, and members wrapped for test-time augmentation as a refit saves them
    # (its Grad-CAM once failed on the wrapper's re-framed copies).
    for wrap in (lambda m: m, with_tta):
        model = scored_model([wrap(_spot_detector()), wrap(_spot_detector())])
        assert len(saliency.members(model)) == 2
        assert all(m.get_layer("conv") for m in saliency.members(model))
        maps = saliency.gradcam(model, x, evaluation="binary")
        assert maps.shape == (3, 16, 16) and maps.min() >= 0 and maps.max() <= 1
        assert np.isfinite(saliency.smoothgrad(model, x, evaluation="binary", samples=2)).all()
    picks = saliency.panel_picks(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 1, 0, 1]), per_kind=2)
    assert picks == [("true positive", 0), ("true positive", 4), ("false positive", 2),
                     ("false negative", 1), ("true negative", 3)]


def test_a_model_whose_output_is_a_one_element_list_is_explained_like_any_other():
    """AutoKeras's exported models return ``[probabilities]``: their Grad-CAM once failed
    with "list indices must be integers or slices, not tuple"."""
    x = np.full((2, 16, 16, 1), 0.1, np.float32)
    x[:, :4, :4] = 1.0
    plain = saliency.gradcam(_spot_detector(), x, evaluation="binary")
    listed = saliency.gradcam(_spot_detector(output_list=True), x, evaluation="binary")
    np.testing.assert_allclose(listed, plain, atol=1e-6)
    assert saliency.faithfulness(_spot_detector(output_list=True), x, evaluation="binary")["difference"] > 0
