"""Where a batch job writes: one row per file, as CSV, JSON Lines or Parquet (chosen by
the file's extension). Rows are written as they come, in input order, so a run that
is interrupted leaves a valid file holding a prefix of the full output, and
`--resume` appends exactly the rest.

CSV is opened by spreadsheets, which run a cell beginning with `=`, `+`, `-`, `@`, a
tab or a carriage return as a formula, and file names are anyone's to choose: such a
cell (and one beginning with `'`, so that reading back is exact) is written with a
leading `'`, as OWASP advises against CSV injection. JSON Lines and Parquet hold the
values as they are."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

from classifier.model import Model
from classifier.service import Answer

#: A model with at most this many classes gets a score column per class; a larger
#: one (ImageNet's 1000) gets its best five instead.
MAX_CLASS_COLUMNS = 20
TOP_COLUMNS = 5
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
#: What a CSV cell must not begin with (OWASP's list, plus the escape itself).
CSV_ESCAPED_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
#: Longest first line of a CSV to resume: ours is a short header, and a file that is
#: not ours is refused without reading it whole.
MAX_HEADER = 64 * 1024

log = logging.getLogger("classifier.batch")


def columns(model: Model) -> list[str]:
    head = ["path", "label", "score", "not_sure", "error", "error_message", "model", "model_version",
            "model_file"]
    if len(model.labels) <= MAX_CLASS_COLUMNS:
        return head + [f"score_{label}" for label in model.labels]
    return head + [f"top{i}_{part}" for i in range(1, TOP_COLUMNS + 1) for part in ("label", "score")]


def row(model: Model, path: str, answer: Answer | None = None,
        error: tuple[str, str] | None = None) -> dict:
    """One output row: the model's answer (as the API gives it: scores and not_sure),
    or the error code and message of a bad file."""
    out = dict.fromkeys(columns(model))
    out.update(path=shown(path), model=model.name, model_version=model.version,
               model_file=model.path.name, error="", error_message="")
    if error:
        out["error"], out["error_message"] = error[0], shown(error[1])
        out["label"] = ""
        return out
    prediction = answer.prediction
    out["label"], out["score"] = prediction.label, prediction.scores[prediction.label]
    out["not_sure"] = answer.not_sure
    if len(model.labels) <= MAX_CLASS_COLUMNS:
        out.update({f"score_{label}": score for label, score in prediction.scores.items()})
    else:
        for i, (label, score) in enumerate(prediction.top[:TOP_COLUMNS], start=1):
            out[f"top{i}_label"], out[f"top{i}_score"] = label, score
    return out


def shown(text: str) -> str:
    """A path (or message) as rows hold it: text every format can store. A file name's
    bytes that are not UTF-8, which Python keeps as lone surrogates, become \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class OutputError(ValueError):
    """An output file that cannot be written or resumed."""


class Writer:
    """Writes rows to `path` in its format; with `resume`, keeps what is there."""

    def __init__(self, path: Path, fields: list[str], *, resume: bool):
        self.path, self.fields = Path(path), fields
        self.format = FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise OutputError(f"{path}: the output must end in {', '.join(FORMATS)}")
        resuming = resume and self.path.exists() and self.path.stat().st_size > 0
        self.done: list[dict] = self._existing() if resuming else []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Everything is first written here and renamed over `path`: an interruption
        # never leaves a file that holds less than the run started with.
        self._partial = self.path.with_name(self.path.name + ".partial")
        if self.format == "parquet":
            self._open_parquet()
        else:
            self._open_lines()

    def done_paths(self) -> set[str]:
        return {r["path"] for r in self.done}

    def write(self, rows: list[dict]) -> None:
        getattr(self, f"_write_{self.format}")(rows)

    def close(self) -> None:
        if self.format == "parquet":
            self._parquet.close()
            self._partial.replace(self.path)
        else:
            self._handle.close()

    # -- reading what a previous run wrote ---------------------------------

    def _existing(self) -> list[dict]:
        """The rows a previous run wrote, for --resume. A file that is not this command's
        output for these columns is refused (OutputError) rather than appended to."""
        try:
            return getattr(self, f"_read_{self.format}")()
        except (OSError, csv.Error) as exc:
            raise self._not_ours(str(exc)) from None

    def _not_ours(self, why: str) -> OutputError:
        return OutputError(f"{self.path} is not this command's {self.format} output for this model "
                           f"({why}); cannot resume it")

    def _read_csv(self) -> list[dict]:
        with self.path.open(newline="", encoding="utf-8", errors="replace") as handle:
            if next(csv.reader([handle.readline(MAX_HEADER)]), None) != self.fields:
                raise self._not_ours("another header")
            return self._complete([self._csv_row(record) for record in csv.reader(handle)], "row")

    def _csv_row(self, record: list[str]) -> dict | None:
        if len(record) != len(self.fields):
            return None
        return {name: value[1:] if value.startswith("'") else value
                for name, value in zip(self.fields, record, strict=True)}

    def _read_jsonl(self) -> list[dict]:
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            return self._complete([self._json_row(line) for line in handle], "line")

    def _json_row(self, line: str) -> dict | None:
        try:
            value = json.loads(line)
        except ValueError:
            return None
        return value if isinstance(value, dict) and list(value) == self.fields else None

    def _complete(self, rows: list[dict | None], unit: str) -> list[dict]:
        """The rows to keep. The writer writes whole lines, so a last row without its line
        end was being written when the run stopped: it is dropped (and done again). Any
        other row that is not one of ours (None) means an edited or foreign file."""
        if rows and not self._ends_with_newline():
            rows = rows[:-1]
            log.warning("%s: dropped the half-written last %s", self.path, unit)
        if None in rows:
            raise self._not_ours(f"{unit} {rows.index(None) + 1} is not one it writes")
        return rows

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def _read_parquet(self) -> list[dict]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self.path)
        except pa.ArrowException as exc:
            raise self._not_ours(str(exc)) from None
        if table.column_names != self.fields:
            raise self._not_ours("other columns")
        return table.to_pylist()

    # -- CSV and JSON Lines: appended line by line, flushed per chunk -------

    def _open_lines(self) -> None:
        """A clean copy of the rows kept (a half-written last line left out) replaces the
        file; new rows are appended to it."""
        self._handle = self._partial.open("w", newline="", encoding="utf-8")
        if self.format == "csv":
            self._csv = csv.DictWriter(self._handle, self.fields)
            self._csv.writeheader()
        self.write(self.done)
        self._partial.replace(self.path)

    def _write_csv(self, rows: list[dict]) -> None:
        self._csv.writerows({name: _csv_cell(value) for name, value in row.items()} for row in rows)
        self._handle.flush()

    def _write_jsonl(self, rows: list[dict]) -> None:
        self._handle.write("".join(json.dumps(r) + "\n" for r in rows))
        self._handle.flush()

    # -- Parquet: a row group per chunk into a new file, renamed when closed --

    def _open_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._schema = pa.schema([(name, _arrow_type(name)) for name in self.fields])
        self._parquet = pq.ParquetWriter(self._partial, self._schema)
        if self.done:
            self._write_parquet(self.done)

    def _write_parquet(self, rows: list[dict]) -> None:
        import pyarrow as pa

        if rows:
            self._parquet.write_table(pa.Table.from_pylist(rows, schema=self._schema))


def _csv_cell(value):
    """A cell a spreadsheet shows as text, never runs (see the module's docstring)."""
    return "'" + value if isinstance(value, str) and value.startswith(CSV_ESCAPED_STARTS) else value


def _arrow_type(name: str):
    import pyarrow as pa

    if name == "not_sure":
        return pa.bool_()
    return pa.float64() if name == "score" or name.startswith("score_") or name.endswith("_score") \
        else pa.string()
