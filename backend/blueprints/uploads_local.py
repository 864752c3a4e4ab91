"""Direct uploads to local-disk storage: the local stand-in for an S3 presigned PUT.

``LocalStorage.presign_put`` signs a grant (key, content type, exact size,
expiry) into the URL; this route checks it and streams the body to storage.
The URL is the credential (as with S3), so no bearer token is needed; each
URL can store its object once.
"""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from backend.extensions import now
from backend.http.media_types import accepts
from backend.http.problems import problem
from backend.storage import ObjectExists, ObjectTooLarge, current_storage
from backend.storage.local import LocalStorage
from backend.storage.signed_upload import UploadGrantExpired, UploadGrantInvalid, verify_grant

#: Media types a grant may name (photos); the grant fixes which one a given URL takes.
UPLOAD_MEDIA_TYPES = ("image/jpeg", "image/png", "image/heic", "image/heif", "image/webp")

blp = Blueprint("uploads_local", __name__, url_prefix="/api/v1",
                description="Direct photo uploads to local-disk storage through signed URLs.")

_BINARY_BODY = {
    "required": True,
    "content": {media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in UPLOAD_MEDIA_TYPES},
}


@blp.route("/uploads/local/<string:token>", methods=["PUT"])
@accepts(*UPLOAD_MEDIA_TYPES)
@blp.doc(requestBody=_BINARY_BODY, security=[])
@blp.response(204, description="Stored. The ETag header is the SHA-256 of the bytes.")
@blp.alt_response(400, response="BAD_REQUEST")
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(411, response="LENGTH_REQUIRED")
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
def put_upload(token: str) -> Response:
    """Upload the bytes of a photo to a signed URL from ``presign_put``.

    Send exactly the headers the upload grant listed: the signed
    Content-Type and a Content-Length equal to the signed size.
    """
    storage = current_storage()
    if not isinstance(storage, LocalStorage) or storage.signing_key is None:
        problem(404, "Direct uploads to this server are not enabled; use the URL the API returned.")
    try:
        grant = verify_grant(storage.signing_key, token, now())
    except UploadGrantExpired:
        problem(403, "This upload URL has expired; ask the API for a new one.", type_="upload-url-expired")
    except UploadGrantInvalid:
        problem(403, "This upload URL is not valid.", type_="upload-url-invalid")
    if request.mimetype != grant.content_type:
        problem(415, f"This upload URL takes {grant.content_type}, not {request.mimetype or 'untyped'}.")
    length = request.content_length
    if length is None:
        problem(411, "Send a Content-Length header (chunked uploads are not accepted).")
    if length != grant.size_bytes:
        problem(413 if length > grant.size_bytes else 400,
                f"This upload URL takes exactly {grant.size_bytes} bytes, not {length}.",
                type_="upload-size-mismatch")
    try:
        stored = storage.put(grant.key, request.stream, grant.content_type,
                             max_bytes=grant.size_bytes, overwrite=False)
    except ObjectExists:
        problem(412, "Something was already uploaded with this URL.", type_="upload-already-stored")
    except ObjectTooLarge:
        problem(413, f"This upload URL takes exactly {grant.size_bytes} bytes.", type_="upload-size-mismatch")
    if stored.size != grant.size_bytes:
        # Cannot happen with an honest Content-Length; werkzeug stops reading at it.
        storage.delete(grant.key)
        problem(400, f"This upload URL takes exactly {grant.size_bytes} bytes.", type_="upload-size-mismatch")
    return Response(status=204, headers={"ETag": f'"{stored.sha256}"'})
