"""All models; importing this package registers every table on ``Base.metadata``.

Each engineer adds the import line of their module here.
"""

from backend.models.accounts import (  # noqa: F401
    Clinic,
    LoginAttempt,
    RefreshToken,
    RefreshTokenFamily,
    Role,
    User,
)
from backend.models.audit import AuditEvent  # noqa: F401
from backend.models.base import Base, TimestampMixin, UTCDateTime, UUIDPrimaryKeyMixin, utcnow  # noqa: F401
from backend.models.calendar import CalendarFeed  # noqa: F401
from backend.models.clinical import (  # noqa: F401
    AdverseEvent,
    Assessment,
    ConsentEvent,
    Invitation,
    Milestone,
    Patient,
    TreatmentCourse,
    TreatmentSession,
)
from backend.models.idempotency import IdempotencyRecord  # noqa: F401
from backend.models.jobs import Job, JobStatus  # noqa: F401
from backend.models.photos import Photo, PhotoAnalysis, PhotoMeasurement, PhotoOverlay, PhotoUpload  # noqa: F401
from backend.models.repeatability import RepeatabilityResult  # noqa: F401
from backend.models.studies import Study, StudyClinic, StudyExport, StudyGrant, StudyParticipant  # noqa: F401
from backend.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint  # noqa: F401
