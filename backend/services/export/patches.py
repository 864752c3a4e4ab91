"""Option ``region_patches``: skin-only crops of the visits' usable photos.

``patches/<participant code>/<milestone>_<region>.png`` (forehead, cheeks; see
``imaging.patches``), only for released participants whose ``research_region_patches`` consent
is also granted now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from backend.models.photos import Photo
from backend.services.export.inclusion import Participant
from backend.services.export.tables import StudyTables, export_photos
from backend.services.patients import current_consent
from backend.storage import current_storage
from imaging.errors import ImageError
from imaging.patches import PATCH_REGIONS, photo_region_patches

PATCH_CONSENT_SCOPE = "research_region_patches"


@dataclass
class PatchReport:
    """What the region-patch option produced (counts only: nobody is identified)."""

    files: dict[str, bytes] = field(default_factory=dict)
    participants_with_patches: int = 0
    skipped_for_consent: int = 0
    photos_without_face: int = 0
    photos_undecodable: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"regions": list(PATCH_REGIONS), "files": len(self.files),
                "participants_with_patches": self.participants_with_patches,
                "participants_skipped_for_consent": self.skipped_for_consent,
                "photos_without_face": self.photos_without_face, "photos_undecodable": self.photos_undecodable}


def patch_photos(participant: Participant, visit_rows: Sequence[dict[str, Any]], view: str) -> dict[str, Photo]:
    """Per visit of ``visits.csv`` with a usable photo: its counting (else newest usable) stored photo, by milestone name."""
    visits = {row["milestone"] for row in visit_rows
              if row["participant_id"] == participant.code and row["usable_photo"]}
    chosen: dict[str, Photo] = {}
    for photo in export_photos(participant.course, view):  # the counting photo first
        if photo.usable and photo.storage_key and photo.milestone is not None and photo.milestone.name in visits:
            chosen.setdefault(photo.milestone.name, photo)
    return chosen


def region_patch_files(participants: Sequence[Participant], tables: StudyTables, view: str) -> PatchReport:
    """``patches/<code>/<milestone>_<region>.png`` of released participants with patch consent."""
    released = {row["participant_id"] for row in tables.rows["participants.csv"]}
    report = PatchReport()
    storage = current_storage()
    for participant in sorted(participants, key=lambda p: p.code):
        if participant.code not in released:
            continue
        if not current_consent(participant.patient, PATCH_CONSENT_SCOPE):
            report.skipped_for_consent += 1
            continue
        produced = 0
        for milestone, photo in sorted(patch_photos(participant, tables.rows["visits.csv"], view).items()):
            with storage.open(photo.storage_key) as stream:
                data = stream.read()
            try:
                patches = photo_region_patches(data)
            except ImageError:
                report.photos_undecodable += 1
                continue
            if patches is None:
                report.photos_without_face += 1
                continue
            for region, patch in patches.items():
                report.files[f"patches/{participant.code}/{milestone}_{region}.png"] = patch.png
                produced += 1
        report.participants_with_patches += produced > 0
    return report
