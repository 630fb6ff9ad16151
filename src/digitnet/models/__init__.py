"""The model zoo: ``create_model(name)``, ``list_models()``, and each family in its own module."""

# Importing the families runs their @register_model decorators; the registry itself imports none of them.
from digitnet.models import cnn, lenet, mlp, resnet  # noqa: E402, F401, I001 (this order = listing order)
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
