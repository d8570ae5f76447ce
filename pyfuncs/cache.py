"""Per-backend cache of loaded models, kept in PL/Python's session dictionary GD."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from pyfuncs.model import LoadedModel

GD_KEY = "blink.models"
CAPACITY = 3  # champion, a challenger and the previous champion during a switch


class ModelCache:
    """Loaded models by id. Rows are immutable, so an id never needs invalidating."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._models: OrderedDict[int, LoadedModel] = OrderedDict()

    def get(self, model_id: int, load: Callable[[int], LoadedModel]) -> LoadedModel:
        model = self._models.get(model_id)
        if model is None:
            model = load(model_id)
            self._models[model_id] = model
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(model_id)
        return model

    def __contains__(self, model_id: int) -> bool:
        return model_id in self._models


def session_cache(GD: dict) -> ModelCache:
    cache = GD.get(GD_KEY)
    if cache is None:
        cache = GD[GD_KEY] = ModelCache()
    return cache
