"""The one Keras model a run's numbers describe (best trial or ensemble average), and its embedding."""

from __future__ import annotations

import keras


def scored_model(models: list[keras.Model]) -> keras.Model:
    """One Keras model for what is scored: the single best trial's model, or the average of
    an ensemble's outputs, its members (``member_0`` the best) nested inside, each with its
    own preprocessing layers. Takes the same inputs as each member."""
    if len(models) == 1:
        return models[0]
    inputs = keras.Input(tuple(models[0].inputs[0].shape[1:]), name="image")
    # Wrapped, so that members built with the same layer and model names stay distinct.
    outputs = [keras.Sequential([m], name=f"member_{i}")(inputs) for i, m in enumerate(models)]
    return keras.Model(inputs, keras.layers.Average(name="ensemble_average", dtype="float32")(outputs),
                       name=f"{models[0].name}_ensemble_of_{len(models)}")


def embedding_model(model: keras.Model, member: int = 0) -> keras.Model:
    """Images -> the ``embedding`` layer of ``model``, or of its first nested model that has
    one: by default the best member (``member_0``) of an ensemble from :func:`scored_model`,
    inside its test-time augmentation wrapper if any; ``member`` picks another (after a
    refit, member ``f`` of the best configuration is its fold-``f`` model)."""
    nested = next((layer for layer in model.layers if layer.name == f"member_{member}"), None)
    if member and nested is None:
        raise ValueError(f"{model.name}: no ensemble member {member}")
    found = _with_embedding(nested or model)
    if found is None:
        raise ValueError(f"{model.name}: no layer named 'embedding' in the model or its members")
    return keras.Model(found.inputs, found.get_layer("embedding").output)


def _with_embedding(model: keras.Model) -> keras.Model | None:
    if any(layer.name == "embedding" for layer in model.layers):
        return model
    for layer in model.layers:
        if isinstance(layer, keras.Model) and (found := _with_embedding(layer)) is not None:
            return found
    return None
