"""`flask feedback ...`: the feedback loop's commands (run with `flask --app app`)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import click
from flask import Blueprint
from sqlalchemy import select, update

from webapp.db import Feedback, db

bp = Blueprint("feedback_cli", __name__, cli_group="feedback")


@bp.cli.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", help="only this model's feedback")
def export(folder: Path, model: str | None):
    """Write accepted feedback photos to FOLDER/MODEL/CLASS/, ready for training with
    `--corrections FOLDER/MODEL`. Only photos shared with consent can be exported."""
    query = select(Feedback).where(Feedback.status == "accepted")
    if model:
        query = query.where(Feedback.model_name == model)
    written, without_photo = Counter(), 0
    for entry in db.session.scalars(query.order_by(Feedback.id)):
        if not entry.has_photo:
            without_photo += 1
            continue
        if Path(entry.label).name != entry.label or entry.label in ("", ".", ".."):
            # Labels are class names, checked to be names, not paths, since 6 Dec 2026;
            # a model made before may still name a class "../x".
            click.echo(f"skipped feedback {entry.id}: its class {entry.label!r} is not a folder name")
            continue
        target = folder / entry.model_name / entry.label
        target.mkdir(parents=True, exist_ok=True)
        # Named by the feedback id: never by anything the person sent.
        (target / f"feedback_{entry.id}.jpg").write_bytes(entry.photo_jpeg)
        written[(entry.model_name, entry.label)] += 1
    for (name, label), count in sorted(written.items()):
        click.echo(f"{name}/{label}: {count}")
    click.echo(f"{sum(written.values())} photos written to {folder}; "
               f"{without_photo} accepted entries had no photo (no consent)")


@bp.cli.command("prune")
@click.option("--days", type=click.IntRange(min=0), default=90, show_default=True,
              help="delete the photos of feedback still unreviewed after this many days")
def prune(days: int):
    """Delete shared photos that will not be used: those of rejected feedback, and
    those still awaiting review after DAYS. The feedback itself stays (its verdict,
    correction and photo hash); accepted photos stay for training. Run it daily (cron):
    photos people shared should not be kept longer than they are of use."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    dropped = {}
    for status, condition in (("rejected", Feedback.status == "rejected"),
                              ("unreviewed", (Feedback.status == "new") & (Feedback.created_at < cutoff))):
        dropped[status] = db.session.execute(
            update(Feedback).where(Feedback.has_photo, condition)
            .values(has_photo=False, photo_jpeg=None)).rowcount
    db.session.commit()
    click.echo(f"deleted the photos of {dropped['rejected']} rejected entries and "
               f"{dropped['unreviewed']} entries unreviewed for over {days} days")
