"""What every loaded model exposes: its signature, a prediction, and the `LoadedModel` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# MLflow colspec type names, the vocabulary signatures are reported in
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer", "boolean"})


@dataclass(frozen=True)
class Signature:
    names: tuple[str, ...] | None
    n_features: int | None
    types: tuple[str, ...] | None
    outputs: tuple[str, ...] | None

    def describe(self) -> dict[str, Any]:
        """JSON-able, for /model-info and Open Inference Protocol metadata."""
        return {
            "names": list(self.names) if self.names is not None else None,
            "n_features": self.n_features,
            "types": list(self.types) if self.types is not None else None,
            "outputs": list(self.outputs) if self.outputs is not None else None,
        }

    def expected(self) -> dict[str, Any]:
        """The `expected` part of an InputMismatch: types keyed by column name (or position)."""
        types = None
        if self.types is not None:
            keys = self.names or [str(i) for i in range(len(self.types))]
            types = dict(zip(keys, self.types, strict=True))
        names = list(self.names) if self.names is not None else None
        return {"names": names, "n_features": self.n_features, "types": types}


@dataclass
class Prediction:
    predictions: list[Any]
    probabilities: list[list[float]] | None
    classes: list[Any] | None


class LoadedModel(Protocol):
    flavor: str
    signature: Signature

    def predict(self, columns: list[str] | None, rows: list[list[Any]]) -> Prediction: ...

    def warm(self) -> None: ...
