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

# Importing the families runs their @register_model decorators; the registry itself imports none of them.
# isort: off
from digitnet.models import mlp, lenet, cnn, resnet, crnn, ensemble  # noqa: F401 (this order is the listing order)
# isort: on

__all__ = ["NORMALIZATIONS", "ModelSpec", "count_parameters", "create_model", "get_spec", "list_models",
           "preprocess", "register_model"]
