"""The model zoo: ``create_model(name)``, ``list_models()``, and each family in its own module."""

from digitnet.models.registry import (
    NORMALIZATIONS,
    ModelSpec,
    count_parameters,
    create_model,
    get_spec,
    list_models,
    preprocess,
    register_model,
)

__all__ = ["NORMALIZATIONS", "ModelSpec", "count_parameters", "create_model", "get_spec", "list_models",
           "preprocess", "register_model"]
