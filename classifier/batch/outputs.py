"""Where a batch job writes: one row per file, as CSV, JSON Lines or Parquet (chosen by
the file's extension). Rows are written as they come, in input order, so a run that
is interrupted leaves a valid file holding a prefix of the full output, and
`--resume` appends exactly the rest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from classifier.engine import Model, Prediction

#: A model with at most this many classes gets a score column per class; a larger
#: one (ImageNet's 1000) gets its best five instead.
MAX_CLASS_COLUMNS = 20
TOP_COLUMNS = 5
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


def columns(model: Model) -> list[str]:
    head = ["path", "label", "score", "error", "error_message", "model", "model_version", "model_file"]
    if len(model.labels) <= MAX_CLASS_COLUMNS:
        return head + [f"score_{label}" for label in model.labels]
    return head + [f"top{i}_{part}" for i in range(1, TOP_COLUMNS + 1) for part in ("label", "score")]


def row(model: Model, path: str, prediction: Prediction | None = None,
        error: tuple[str, str] | None = None) -> dict:
    """One output row: a prediction, or the error code and message of a bad file."""
    out = dict.fromkeys(columns(model))
    out.update(path=path, model=model.name, model_version=model.version, model_file=model.path.name,
               error="", error_message="")
    if error:
        out["error"], out["error_message"] = error
        out["label"] = ""
        return out
    out["label"], out["score"] = prediction.label, prediction.scores[prediction.label]
    if len(model.labels) <= MAX_CLASS_COLUMNS:
        out.update({f"score_{label}": score for label, score in prediction.scores.items()})
    else:
        for i, (label, score) in enumerate(prediction.top[:TOP_COLUMNS], start=1):
            out[f"top{i}_label"], out[f"top{i}_score"] = label, score
    return out


class OutputError(ValueError):
    """An output file that cannot be written or resumed."""


class Writer:
    """Writes rows to `path` in its format; with `resume`, keeps what is there."""

    def __init__(self, path: Path, fields: list[str], *, resume: bool):
        self.path, self.fields = Path(path), fields
        self.format = FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise OutputError(f"{path}: the output must end in {', '.join(FORMATS)}")
        self.done: list[dict] = self._existing() if resume and self.path.exists() else []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        getattr(self, f"_open_{self.format}")()

    def done_paths(self) -> set[str]:
        return {r["path"] for r in self.done}

    def write(self, rows: list[dict]) -> None:
        getattr(self, f"_write_{self.format}")(rows)

    def close(self) -> None:
        getattr(self, f"_close_{self.format}")()

    # -- reading what a previous run wrote ---------------------------------

    def _existing(self) -> list[dict]:
        if self.format == "csv":
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames != self.fields:
                    raise OutputError(f"{self.path} was written for another model or version; "
                                      "cannot resume it")
                return list(reader)
        if self.format == "jsonl":
            with self.path.open(encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.endswith("\n")]
        import pyarrow.parquet as pq

        table = pq.read_table(self.path)
        if table.column_names != self.fields:
            raise OutputError(f"{self.path} was written for another model; cannot resume it")
        return table.to_pylist()

    # -- CSV and JSON Lines: appended line by line, flushed per chunk -------

    def _open_csv(self) -> None:
        self._handle = self.path.open("a" if self.done else "w", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._handle, self.fields)
        if not self.done:
            self._csv.writeheader()

    def _write_csv(self, rows: list[dict]) -> None:
        self._csv.writerows(rows)
        self._handle.flush()

    def _close_csv(self) -> None:
        self._handle.close()

    def _open_jsonl(self) -> None:
        if self.done:  # drop a half-written last line an interruption may have left
            self.path.write_text("".join(json.dumps(r) + "\n" for r in self.done), encoding="utf-8")
        self._handle = self.path.open("a" if self.done else "w", encoding="utf-8")

    def _write_jsonl(self, rows: list[dict]) -> None:
        self._handle.write("".join(json.dumps(r) + "\n" for r in rows))
        self._handle.flush()

    def _close_jsonl(self) -> None:
        self._handle.close()

    # -- Parquet: a row group per chunk into a new file, renamed when closed --

    def _open_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._schema = pa.schema([(name, _arrow_type(name)) for name in self.fields])
        self._partial = self.path.with_suffix(".parquet.partial")
        self._parquet = pq.ParquetWriter(self._partial, self._schema)
        if self.done:
            self._write_parquet(self.done)

    def _write_parquet(self, rows: list[dict]) -> None:
        import pyarrow as pa

        if rows:
            self._parquet.write_table(pa.Table.from_pylist(rows, schema=self._schema))

    def _close_parquet(self) -> None:
        self._parquet.close()
        self._partial.replace(self.path)


def _arrow_type(name: str):
    import pyarrow as pa

    return pa.float64() if name == "score" or name.startswith("score_") or name.endswith("_score") \
        else pa.string()
