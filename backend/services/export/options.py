"""The parameters of one export or statistics request (all stated in the manifest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imaging.version import ALGORITHM_VERSION


@dataclass(frozen=True)
class ExportOptions:
    """Parameters of one export (all stated in the manifest)."""

    k: int = 5
    max_suppression: float = 0.1
    parquet: bool = False
    view: str = "front"
    algorithm_version: str = ALGORITHM_VERSION
    region_patches: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportOptions:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def as_dict(self) -> dict[str, Any]:
        return {"k": self.k, "max_suppression": self.max_suppression, "parquet": self.parquet,
                "view": self.view, "algorithm_version": self.algorithm_version,
                "region_patches": self.region_patches}
