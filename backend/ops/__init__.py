"""Operations: what an operator runs with ``flask --app backend <command>``.

:mod:`backend.ops.cli` defines and registers every command; the work is in the modules beside
it: :mod:`~backend.ops.backup` (backup and restore), :mod:`~backend.ops.integrity` (the
consistency check), :mod:`~backend.ops.prune` and :mod:`~backend.ops.reanalyse`. Migrations are
:mod:`backend.migrations`, the demo clinic :mod:`backend.demo`.
"""
