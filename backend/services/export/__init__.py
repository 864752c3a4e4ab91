"""Study data for researchers, one module per idea.

- :mod:`~backend.services.export.inclusion`: who is in a study, their codes and date offsets;
- :mod:`~backend.services.export.tables`: the de-identified tables and the cohort statistics;
- :mod:`~backend.services.export.codebook`: one definition per exported variable;
- :mod:`~backend.services.export.writers`: CSV, Parquet and zip;
- :mod:`~backend.services.export.patches`: the optional region-patch images;
- :mod:`~backend.services.export.package`: the zip with its manifest, and the job that builds it;
- :mod:`~backend.services.export.options`: the parameters of a request.

No photos, names, contact data, free text, record ids or exact dates are written (see
``backend.services.deidentify``).
"""
