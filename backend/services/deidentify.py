"""De-identification of study data: participant codes, date shifting, age bands, k-anonymity.

Rules (stated in every export's manifest):

- Participant codes are random (OS CSPRNG), persistent per (study, patient) and never derived
  from names, emails or record ids.
- Time is days since baseline. Where a calendar date is exported it is shifted by a secret
  per-participant offset of :data:`DATE_SHIFT_RANGE_DAYS` (1 to 3 years back), the same for
  every date of that participant, so intervals within a participant are exact.
- Ages are bands; every age above 89 is collapsed into ``90+`` (HIPAA Safe Harbor) and every
  age below 18 into ``<18``.
- k-anonymity over the quasi-identifiers (age band, sex, Fitzpatrick type, clinic code, course
  descriptors): the generalisation steps of :data:`GENERALISATION_STEPS` are applied in order
  until at most ``max_suppression`` of the participants sit in equivalence classes smaller
  than k; those participants are then suppressed (removed from every table).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from imaging.catalogue import FITZPATRICK_GROUPS

#: Offsets (days, inclusive) a participant's dates are shifted by: 1 to 3 years back.
DATE_SHIFT_RANGE_DAYS = (-1095, -366)
#: Alphabet of participant codes (Crockford base32: no I, L, O, U).
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_PREFIX = "P-"
CODE_LENGTH = 8
#: Ages at or above this are reported as one band ("over 89").
OLDEST_BAND_START = 90
YOUNGEST_BAND_END = 18
#: Quasi-identifier columns of a participant row, in class-key order.
QUASI_IDENTIFIERS = (
    "age_band", "sex", "fitzpatrick_type", "clinic_code",
    "indication", "exosome_source", "delivery", "split_face",
)
#: Value that replaces a generalised-away quasi-identifier.
SUPPRESSED = "*"
FITZPATRICK_NUMERALS = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}


def new_participant_code() -> str:
    """A random participant code, ``P-`` + 8 Crockford base32 characters (40 bits)."""
    return CODE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def new_date_shift_days() -> int:
    """A random secret date offset in days, uniform over :data:`DATE_SHIFT_RANGE_DAYS`."""
    low, high = DATE_SHIFT_RANGE_DAYS
    return low + secrets.randbelow(high - low + 1)


def shift_date(date: dt.date | None, shift_days: int) -> dt.date | None:
    """``date`` moved by the participant's secret offset (None stays None)."""
    return None if date is None else date + dt.timedelta(days=shift_days)


def age_in_years(date_of_birth: dt.date, on: dt.date) -> int:
    """Completed years of age on a date (birthday on 29 February counts from 1 March)."""
    years = on.year - date_of_birth.year
    if (on.month, on.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years


def age_band(age: int, width: int = 5) -> str:
    """Age band label of ``width`` years, aligned to multiples of ``width``.

    Parameters
    ----------
    age : int
        Completed years.
    width : int
        Band width in years (5, 10 or 20; 18 and 90 stay band limits).

    Returns
    -------
    str
        ``"<18"``, ``"90+"``, or ``"lo-hi"`` inclusive (e.g. ``"40-44"``); the first band
        starts at 18 and the last ends at 89.
    """
    if age < YOUNGEST_BAND_END:
        return f"<{YOUNGEST_BAND_END}"
    if age >= OLDEST_BAND_START:
        return f"{OLDEST_BAND_START}+"
    low = max(YOUNGEST_BAND_END, age - age % width)
    high = min(OLDEST_BAND_START - 1, age - age % width + width - 1)
    return f"{low}-{high}"


def fitzpatrick_label(phototype: int, level: int) -> str:
    """Fitzpatrick type at a generalisation level: 0 ``"III"``, 1 ``"III-IV"``, 2 ``"*"``."""
    if level == 0:
        return FITZPATRICK_NUMERALS[phototype]
    if level == 1:
        return FITZPATRICK_GROUPS[phototype]
    return SUPPRESSED


@dataclass(frozen=True)
class GeneralisationLevel:
    """How coarse each generalisable quasi-identifier is."""

    age_band_width: int = 5
    fitzpatrick_level: int = 0
    clinic_shown: bool = True


#: Cumulative generalisation steps, mildest first (name, level reached).
GENERALISATION_STEPS: tuple[tuple[str, GeneralisationLevel], ...] = (
    ("age bands widened to 10 years", GeneralisationLevel(10, 0, True)),
    ("Fitzpatrick types merged to I-II / III-IV / V-VI", GeneralisationLevel(10, 1, True)),
    ("clinic code suppressed", GeneralisationLevel(10, 1, False)),
    ("age bands widened to 20 years", GeneralisationLevel(20, 1, False)),
    ("Fitzpatrick type suppressed", GeneralisationLevel(20, 2, False)),
)


@dataclass(frozen=True)
class QuasiIdentifiers:
    """The raw quasi-identifiers of one participant (before generalisation)."""

    age: int
    sex: str
    fitzpatrick_type: int
    clinic_code: str
    indication: str
    exosome_source: str
    delivery: str
    split_face: bool

    def generalised(self, level: GeneralisationLevel) -> dict[str, str]:
        """Quasi-identifier values at ``level`` (strings, as exported)."""
        return {
            "age_band": age_band(self.age, level.age_band_width),
            "sex": self.sex,
            "fitzpatrick_type": fitzpatrick_label(self.fitzpatrick_type, level.fitzpatrick_level),
            "clinic_code": self.clinic_code if level.clinic_shown else SUPPRESSED,
            "indication": self.indication,
            "exosome_source": self.exosome_source,
            "delivery": self.delivery,
            "split_face": "yes" if self.split_face else "no",
        }


@dataclass
class AnonymityResult:
    """Outcome of :func:`k_anonymise`.

    Attributes
    ----------
    values : dict
        Participant code -> generalised quasi-identifiers, for the released participants.
    suppressed : list of str
        Codes of participants removed because their class stayed smaller than k.
    steps_applied : list of str
        Names of the generalisation steps applied, in order.
    level : GeneralisationLevel
    k : int
    min_class_size : int or None
        Smallest equivalence class among the released participants (None if none released).
    """

    values: dict[str, dict[str, str]]
    suppressed: list[str]
    steps_applied: list[str]
    level: GeneralisationLevel
    k: int
    max_suppression: float
    min_class_size: int | None = None
    class_sizes: list[int] = field(default_factory=list)

    def report(self) -> dict[str, object]:
        """The manifest's account of what was changed (no participant-level detail)."""
        return {
            "k": self.k,
            "quasi_identifiers": list(QUASI_IDENTIFIERS),
            "max_suppression_fraction": self.max_suppression,
            "generalisation_steps_available": [name for name, _ in GENERALISATION_STEPS],
            "generalisation_steps_applied": list(self.steps_applied),
            "age_band_width_years": self.level.age_band_width,
            "fitzpatrick_level": ["type", "pairs", "suppressed"][self.level.fitzpatrick_level],
            "clinic_code_shown": self.level.clinic_shown,
            "participants_suppressed": len(self.suppressed),
            "participants_released": len(self.values),
            "equivalence_classes": len(self.class_sizes),
            "min_class_size": self.min_class_size,
        }


def class_key(values: Mapping[str, str]) -> tuple[str, ...]:
    """The equivalence-class key of one participant's quasi-identifiers."""
    return tuple(values[name] for name in QUASI_IDENTIFIERS)


def small_class_members(generalised: Mapping[str, Mapping[str, str]], k: int) -> list[str]:
    """Codes whose equivalence class has fewer than ``k`` members (sorted)."""
    sizes = Counter(class_key(v) for v in generalised.values())
    return sorted(code for code, v in generalised.items() if sizes[class_key(v)] < k)


def k_anonymise(participants: Mapping[str, QuasiIdentifiers], k: int = 5,
                max_suppression: float = 0.1) -> AnonymityResult:
    """Generalise, then suppress, until every released equivalence class has >= k members.

    Parameters
    ----------
    participants : mapping
        Participant code -> raw quasi-identifiers.
    k : int
        Minimum class size, >= 1 (1 disables protection).
    max_suppression : float
        Fraction 0..1 of participants that may be suppressed before a further generalisation
        step is tried; after the last step, whatever is still below k is suppressed anyway.

    Returns
    -------
    AnonymityResult
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if not 0.0 <= max_suppression <= 1.0:
        raise ValueError("max_suppression must be within 0..1")
    levels: list[tuple[str | None, GeneralisationLevel]] = [(None, GeneralisationLevel())]
    levels += list(GENERALISATION_STEPS)
    steps_applied: list[str] = []
    total = len(participants)
    for index, (name, level) in enumerate(levels):
        if name is not None:
            steps_applied.append(name)
        generalised = {code: qi.generalised(level) for code, qi in participants.items()}
        small = small_class_members(generalised, k)
        last = index == len(levels) - 1
        if last or len(small) <= max_suppression * total:
            break
    released = {code: v for code, v in generalised.items() if code not in set(small)}
    sizes = sorted(Counter(class_key(v) for v in released.values()).values())
    return AnonymityResult(
        values=released, suppressed=small, steps_applied=steps_applied, level=level, k=k,
        max_suppression=max_suppression, min_class_size=sizes[0] if sizes else None, class_sizes=sizes,
    )

