"""skintrack imaging: a pure library turning one face photo into skin measurements.

Importing this package sets the decoders' pixel caps first (see :mod:`imaging._limits`),
before OpenCV is imported anywhere in the package, so oversized images are refused from
their headers. Heavy submodules are imported lazily by attribute access.
"""

from __future__ import annotations

import importlib

from imaging import _limits  # noqa: F401  (must run before any cv2 import)

_LAZY = {
    "ImageError": "imaging.errors",
    "DecodedImage": "imaging.decode",
    "decode_image": "imaging.decode",
    "SanitisedPhoto": "imaging.sanitise",
    "sanitise_photo": "imaging.sanitise",
    "FaceGeometry": "imaging.face",
    "detect_face": "imaging.face",
    "CanonicalFace": "imaging.align",
    "to_canonical": "imaging.align",
    "register_to_baseline": "imaging.align",
    "region_masks": "imaging.regions",
    "QualityReport": "imaging.quality",
    "assess_quality": "imaging.quality",
    "quality_gate": "imaging.quality",
    "AnalysisResult": "imaging.analysis",
    "BaselineReference": "imaging.analysis",
    "analyze": "imaging.analysis",
    "baseline_reference_from": "imaging.analysis",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imaging' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
