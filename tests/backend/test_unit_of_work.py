"""The unit of work: commit on success, roll back on refusal or error, callbacks after the end."""

from __future__ import annotations

import uuid

import pytest
from flask import Response
from sqlalchemy import func, select

from backend.errors import Conflict, SignInRefused
from backend.extensions import db
from backend.models.accounts import Clinic
from backend.unit_of_work import after_transaction, run_unit_of_work, transactional


def clinic_names(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(Clinic.name)))


def add_clinic(name: str) -> Clinic:
    clinic = Clinic(id=uuid.uuid4(), name=name)
    db.session.add(clinic)
    return clinic


def view_adding(name: str, status: int = 200):
    @transactional
    def view():
        add_clinic(name)
        return Response(status=status)

    return view


@pytest.mark.parametrize(("status", "stored"), [(200, True), (201, True), (204, True), (302, True),
                                                (400, False), (404, False), (500, False)])
def test_a_view_commits_below_400_and_rolls_back_from_400(app, status, stored):
    with app.test_request_context():
        assert view_adding("Clinic S", status)().status_code == status
    assert clinic_names(app) == (["Clinic S"] if stored else [])


def test_an_exception_rolls_back_and_goes_on(app):
    @transactional
    def view():
        add_clinic("Clinic E")
        raise RuntimeError("boom")

    with app.test_request_context(), pytest.raises(RuntimeError):
        view()
    assert clinic_names(app) == []


def test_a_domain_error_rolls_back_unless_it_keeps_changes(app):
    def refusing(error):
        def work():
            add_clinic(type(error).__name__)
            raise error
        return work

    with app.app_context():
        with pytest.raises(Conflict):
            run_unit_of_work(refusing(Conflict("taken", slug="x")), succeeded=bool)
        with pytest.raises(SignInRefused):
            run_unit_of_work(refusing(SignInRefused()), succeeded=bool)
    assert clinic_names(app) == ["SignInRefused"]


def test_before_commit_adds_rows_to_a_success_only(app):
    with app.app_context():
        run_unit_of_work(lambda: "yes", succeeded=lambda r: r == "yes", before_commit=lambda r: add_clinic("kept"))
        run_unit_of_work(lambda: "no", succeeded=lambda r: r == "yes", before_commit=lambda r: add_clinic("never"))
    assert clinic_names(app) == ["kept"]


def test_callbacks_learn_whether_the_unit_committed(app):
    outcomes: list[tuple[str, bool]] = []

    def work(name: str, result: str):
        def run():
            add_clinic(name)
            after_transaction(lambda committed: outcomes.append((name, committed)))
            return result
        return run

    with app.app_context():
        run_unit_of_work(work("ok", "ok"), succeeded=lambda r: r == "ok")
        run_unit_of_work(work("refused", "no"), succeeded=lambda r: r == "ok")
        # A commit that fails (here a duplicate primary key) rolls back and reports False.
        existing = db.session.scalar(select(Clinic.id))
        with pytest.raises(Exception):  # noqa: B017 - the driver's IntegrityError
            run_unit_of_work(lambda: db.session.add(Clinic(id=existing, name="dup"))
                             or after_transaction(lambda c: outcomes.append(("dup", c))) or "ok",
                             succeeded=lambda r: True)
        # Callbacks run once: a later unit does not see them again.
        run_unit_of_work(lambda: "ok", succeeded=lambda r: True)
        assert db.session.scalar(select(func.count()).select_from(Clinic)) == 1
    assert outcomes == [("ok", True), ("refused", False), ("dup", False)]
