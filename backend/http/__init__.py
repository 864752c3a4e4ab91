"""HTTP plumbing shared by the API and the dashboard, apart from any one endpoint.

- :mod:`backend.http.problems`: every error as RFC 9457 problem+json, and the one table that maps
  domain errors (:mod:`backend.errors`) to statuses;
- :mod:`backend.http.media_types`: the request-body media-type gate (415);
- :mod:`backend.http.idempotency`: ``Idempotency-Key`` replays of creating POSTs;
- :mod:`backend.http.pagination`: cursor pages of lists.
"""
