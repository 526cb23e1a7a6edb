"""python -m classifier.batch against hostile input: archives of zeros, devices and FIFOs
named in a list, damaged archives, file names that are spreadsheet formulas, damaged
output files to resume. Every input is made here. Each source runs the real command
in a subprocess, whose peak memory (its largest process) and time are bounded: the
run must end, exit 0, and give every file its row."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from classifier.batch import cli
from classifier.batch.sources import Item, ItemError, Reader, expand
from classifier.settings import PROJECT_ROOT
from tests import images
from tests.conftest import SHIPPED_MODELS

MB = 1 << 20
MAX_RSS_MB = 600
MAX_SECONDS = 60
FORMULA_NAMES = ['=HYPERLINK("evil.example","x").jpg', "+SUM(1).jpg", "@cmd.jpg", "-2+3.jpg",
                 "\ttab.jpg", "\rreturn.jpg", "'quoted.jpg"]


#: Runs a command and prints the peak RSS (KB) of its largest process. It runs in a
#: fresh, small interpreter because a process's peak also counts what its parent held
#: when it was forked: measured from pytest, every run would weigh as much as pytest.
MEASURE = ("import resource, subprocess, sys; "
           "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


@dataclass
class Run:
    code: int
    err: str
    peak_mb: float
    seconds: float


def batch(out: Path, *sources, cwd: Path = PROJECT_ROOT) -> Run:
    """The command in a subprocess, timed, with the peak RSS of its largest process
    (parent or worker); killed, with its workers, after MAX_SECONDS."""
    command = [sys.executable, "-c", MEASURE, sys.executable, "-m", "classifier.batch",
               *map(str, sources), "--out", str(out), "--models-dir", str(SHIPPED_MODELS),
               "--workers", "2", "--variant", "int8"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        peak, err = process.communicate(timeout=MAX_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{sources} still running after {MAX_SECONDS} s")
    run = Run(process.returncode, err, int(peak) / 1024, time.monotonic() - started)
    print(f"\n{sources[0]}: exit {run.code}, peak RSS {run.peak_mb:.0f} MB, {run.seconds:.1f} s")
    return run


def rows_by_path(path: Path) -> dict[str, dict]:
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    else:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    return {row["path"]: row for row in rows}


def assert_survived(run: Run, out: Path, expected: dict[str, str]) -> dict[str, dict]:
    """Exit 0 in bounded memory and time; a row per file: `expected` maps each path to
    its error code, "" for a verdict."""
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert run.peak_mb <= MAX_RSS_MB and run.seconds <= MAX_SECONDS
    rows = rows_by_path(out)
    assert {path: row["error"] for path, row in rows.items()} == expected
    for row in rows.values():
        assert row["label"] in (("hotdog", "not_hotdog") if not row["error"] else ("",))
        assert bool(row["error_message"]) == bool(row["error"])
    return rows


# -- archives of zeros: refused from their declared size, never read whole -----------


class Zeros(io.RawIOBase):
    """`size` zero bytes, made as they are read: a gigabyte member costs no memory."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def test_zip_of_two_350_mb_members_of_zeros(tmp_path):
    archive = tmp_path / "zeros.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("good.jpg", images.jpeg(seed=1))
        for name in ("a.jpg", "b.jpg"):
            with zipped.open(name, "w", force_zip64=True) as member:
                for _ in range(350):
                    member.write(bytes(MB))
    assert archive.stat().st_size < MB
    out = tmp_path / "out.csv"
    rows = assert_survived(batch(out, archive), out, {f"{archive}!good.jpg": "",
                                                      f"{archive}!a.jpg": "file_too_large",
                                                      f"{archive}!b.jpg": "file_too_large"})
    assert f"{350 * MB:,} bytes" in rows[f"{archive}!a.jpg"]["error_message"]


def test_tar_gz_with_a_gigabyte_of_zeros_before_a_photo(tmp_path):
    archive = tmp_path / "zeros.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for name, size, data in (("big.jpg", 1 << 30, io.BufferedReader(Zeros(1 << 30), MB)),
                                 ("good.jpg", len(photo := images.jpeg(seed=2)), io.BytesIO(photo))):
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, data)
    out = tmp_path / "out.csv"
    assert_survived(batch(out, archive), out,
                    {f"{archive}!big.jpg": "file_too_large", f"{archive}!good.jpg": ""})


# -- what a list names: only regular files are opened --------------------------------


def test_list_naming_a_device_a_fifo_and_a_folder(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(images.jpeg(seed=3))
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "zero-link.jpg").symlink_to("/dev/zero")
    expected = {"/dev/zero": "not_a_regular_file", str(tmp_path / "fifo.jpg"): "not_a_regular_file",
                str(tmp_path / "folder.jpg"): "not_a_regular_file",
                str(tmp_path / "zero-link.jpg"): "not_a_regular_file",
                str(tmp_path / "photo.jpg"): "", str(tmp_path / "gone.jpg"): "unreadable_file"}
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{path}\n" for path in expected))
    out = tmp_path / "out.csv"
    assert_survived(batch(out, listing), out, expected)


def test_a_size_that_lies_is_caught_by_the_capped_read():
    """/proc files say they are empty; the read stops one byte past the limit."""
    if not Path("/proc/cpuinfo").is_file():
        pytest.skip("no /proc")
    with Reader(100) as reader, pytest.raises(ItemError) as caught:
        reader.read(Item("/proc/cpuinfo"))
    assert caught.value.code == "file_too_large" and "more than" in caught.value.message


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "binary-list.txt", "long-line-list.txt"])
def test_sources_that_are_no_files_or_lists_are_refused_at_once(tmp_path, capsys, source):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "binary-list.txt").write_bytes(bytes(range(256)) * 4096)
    (tmp_path / "long-line-list.txt").write_bytes(b"x" * (4 * MB))
    path = source if source.startswith("/") else tmp_path / source
    assert cli.main([str(path), "--out", str(tmp_path / "o.csv"),
                     "--models-dir", str(SHIPPED_MODELS)]) == 2
    assert "error:" in capsys.readouterr().err


# -- damaged archives: an error row for each bad member, the run goes on -------------


def zip_records(data: bytearray) -> dict[str, tuple[int, int]]:
    """Each member's local header offset and central directory record offset."""
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    records, offset = {}, archive.start_dir
    while data[offset:offset + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, offset + 28)
        name = data[offset + 46:offset + 46 + name_length].decode()
        records[name] = (archive.getinfo(name).header_offset, offset)
        offset += 46 + name_length + extra_length + comment_length
    return records


def test_encrypted_deflate64_and_bad_crc_members(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name in ("good.jpg", "encrypted.jpg", "deflate64.jpg", "bad-crc.jpg"):
            zipped.writestr(name, images.jpeg(seed=4),
                            zipfile.ZIP_DEFLATED if name == "deflate64.jpg" else zipfile.ZIP_STORED)
    data = bytearray(buffer.getvalue())
    records = zip_records(data)
    for local in records["encrypted.jpg"][0] + 6, records["encrypted.jpg"][1] + 8:
        data[local] |= 0x1  # "encrypted" in the general-purpose flags
    for local in records["deflate64.jpg"][0] + 8, records["deflate64.jpg"][1] + 10:
        struct.pack_into("<H", data, local, 9)  # compression method 9: deflate64
    header = records["bad-crc.jpg"][0]
    data[header + 30 + sum(struct.unpack_from("<HH", data, header + 26)) + 100] ^= 0xFF
    archive = tmp_path / "damaged.zip"
    archive.write_bytes(bytes(data))
    out = tmp_path / "out.csv"
    rows = assert_survived(batch(out, archive), out, {
        f"{archive}!good.jpg": "", f"{archive}!encrypted.jpg": "encrypted_member",
        f"{archive}!deflate64.jpg": "damaged_member", f"{archive}!bad-crc.jpg": "damaged_member"})
    assert "deflate64" in rows[f"{archive}!deflate64.jpg"]["error_message"]
    assert "CRC" in rows[f"{archive}!bad-crc.jpg"]["error_message"]


def cut_tar_gz(where: str) -> tuple[bytes, list[str]]:
    """A .tar.gz of three photos cut short: the gzip stream ends (without its trailer) at
    `where` in the tar; also the members expected to get a verdict."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i in range(3):
            info = tarfile.TarInfo(f"m{i}.jpg")
            info.size = len(photo := images.jpeg(seed=10 + i))
            tar.addfile(info, io.BytesIO(photo))
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as tar:
        last = tar.getmembers()[-1]  # read back: only then are its offsets known
    cut = {"in a member's data": last.offset_data + 100, "in a header": last.offset + 100,
           "before the first header": 100}[where]
    compressor = zlib.compressobj(wbits=31)  # gzip
    data = compressor.compress(buffer.getvalue()[:cut]) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data, ["m0.jpg", "m1.jpg"] if cut > 512 else []


@pytest.mark.parametrize("where", ["in a member's data", "in a header", "before the first header"])
def test_truncated_tar_gz(tmp_path, where):
    archive = tmp_path / "cut.tar.gz"
    data, good = cut_tar_gz(where)
    archive.write_bytes(data)
    expected = {f"{archive}!{name}": "" for name in good} | {str(archive): "truncated_archive"}
    if where == "in a member's data":
        expected[f"{archive}!m2.jpg"] = "damaged_member"
    out = tmp_path / "out.csv"
    assert_survived(batch(out, archive), out, expected)
    assert list(rows_by_path(out))[-1] == str(archive)  # after the members before the damage


def tar_with_header_before(kind: str, size: int) -> bytes:
    """A .tar.gz of a photo, then an extended header of `size` bytes of the `kind` given
    (made by hand: tarfile writes none of these), then a photo it would apply to."""
    if kind == "pax of digits":
        header, data = tarfile.XHDTYPE, b"1" * size
    elif kind == "sparse map":  # well formed, but a map tarfile cannot read (ValueError)
        record = b" GNU.sparse.map=x\n"
        header, data = tarfile.XHDTYPE, b"%d%s" % (len(record) + 2, record)
    elif kind == "pax record":
        value = b"x" * (size - len(b"comment=\n") - len(b"%d " % size))
        header, data = tarfile.XHDTYPE, b"%d comment=%s\n" % (size, value)
    else:  # a GNU long name
        header, data = tarfile.GNUTYPE_LONGNAME, b"n" * size + b"\0"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        first = images.jpeg(seed=40)
        info = tarfile.TarInfo("first.jpg")
        info.size = len(first)
        tar.addfile(info, io.BytesIO(first))
        extended = tarfile.TarInfo("././@LongLink")
        extended.type, extended.size = header, len(data)
        buffer.write(extended.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512))
        tar.offset = buffer.tell()
        info = tarfile.TarInfo("second.jpg")
        info.size = len(first)
        tar.addfile(info, io.BytesIO(first))
    return zlib.compress(buffer.getvalue(), wbits=31)


@pytest.mark.parametrize("kind, size, words", [
    ("pax of digits", 20_000, "pax records that are not LENGTH KEY=VALUE lines"),
    ("pax record", 1 << 20, "an extended header of 1,048,576 bytes"),
    ("GNU long name", 16 << 20, "an extended header of 16,777,217 bytes"),
    ("sparse map", 0, "invalid literal"),
])
def test_tar_headers_before_a_member_are_read_only_when_small_and_well_formed(tmp_path, kind, size, words):
    """tarfile reads a pax header or a GNU long name whole, and before Python 3.11.10
    parses a pax header of digits in quadratic time (20 KB: 0.8 s). The members before
    it are listed; it ends the archive's listing as damaged, unread."""
    archive = tmp_path / "headers.tar.gz"
    archive.write_bytes(tar_with_header_before(kind, size))
    assert archive.stat().st_size < 100_000
    items = list(expand([str(archive)]))
    assert [item.member for item in items[:1]] == ["first.jpg"]
    # Compared by length first: a regression would otherwise print a 16 MB name.
    assert [(len(item.path), item.error) for item in items[1:]] == [(len(str(archive)), "truncated_archive")]
    assert words in items[1].message


def test_a_zip_name_flagged_utf8_that_is_not_is_a_damaged_archive_row(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("ok.jpg", images.jpeg())
    data = bytearray(buffer.getvalue())
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x08  # ... flags bit 11 (UTF-8 names), in the central directory
    data[central + 9] |= 0x08
    data[central + 46] = 0xFF  # and a name that is not UTF-8
    (tmp_path / "names.zip").write_bytes(bytes(data))
    items = list(expand([str(tmp_path / "names.zip")]))
    assert [item.error for item in items] == ["truncated_archive"]


def test_a_glob_does_not_follow_links_to_folders(tmp_path):
    """Two links to "." made glob.glob's `**` list about 2^40 paths."""
    folder = tmp_path / "photos"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "a.jpg").write_bytes(images.jpeg())
    (folder / "b.jpg").write_bytes(images.jpeg())
    (folder / ".hidden.jpg").write_bytes(images.jpeg())
    (folder / "l1").symlink_to(".", target_is_directory=True)
    (folder / "l2").symlink_to(".", target_is_directory=True)
    started = time.monotonic()
    items = list(expand([f"{folder}/**/*.jpg"]))
    assert time.monotonic() - started < 5
    assert [item.path for item in items] == [f"{folder}/b.jpg", f"{folder}/deep/a.jpg"]
    # As glob.glob read them: `**` inside a name is `*`, and a pattern may name hidden files.
    assert [item.path for item in expand([f"{folder}/**.jpg"])] == [f"{folder}/b.jpg"]
    assert [item.path for item in expand([f"{folder}/.h*.jpg"])] == [f"{folder}/.hidden.jpg"]


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tar.xz"])
@pytest.mark.parametrize("layout", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_tars_with_long_names_and_pax_records_give_every_photo(tmp_path, suffix, layout):
    """What tar tools write (a global pax header, pax records for long and non-ASCII
    names, times and extended attributes; GNU long names) passes the header checks."""
    photos = {("folder-" + "d" * 120 + "/") * 2 + "long.jpg": images.jpeg(seed=41),
              "café/ünïcode.jpg": images.jpeg(seed=42), "short.jpg": images.jpeg(seed=43)}
    archive = tmp_path / f"photos{suffix}"
    pax = {"pax_headers": {"comment": "made by a test"}} if layout == tarfile.PAX_FORMAT else {}
    with tarfile.open(archive, "w" + (":" + suffix.rsplit(".", 1)[1] if suffix != ".tar" else ""),
                      format=layout, **pax) as tar:
        for name, photo in photos.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(photo), 1_700_000_000.123456
            if layout == tarfile.PAX_FORMAT:
                info.pax_headers = {"SCHILY.xattr.user.origin": "phone 1234567890"}
            tar.addfile(info, io.BytesIO(photo))
    items = list(expand([str(archive)]))
    with Reader(10 * MB) as reader:
        assert {item.member: reader.read(item) for item in items} == photos


def test_zip_cut_short(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("a.jpg", images.jpeg(seed=5))
    archive = tmp_path / "cut.zip"
    archive.write_bytes(buffer.getvalue()[:-30])  # no end of central directory
    out = tmp_path / "out.csv"
    assert_survived(batch(out, archive), out, {str(archive): "truncated_archive"})


# -- file names: formulas, bytes that are not UTF-8; resuming damaged and foreign outputs


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_file_names_that_are_not_utf8_are_written_and_resumed(tmp_path, suffix):
    """Python keeps such bytes as lone surrogates, which neither UTF-8 CSV nor Parquet can
    store: the row shows them as \\xNN, and --resume still knows the file."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xe9.jpg")).write_bytes(images.jpeg(seed=30))
    out = tmp_path / f"out{suffix}"
    run = batch(out, folder)
    assert run.code == 0, run.err
    resumed = batch(out, folder, "--resume")
    assert resumed.code == 0 and "1 already in" in resumed.err, resumed.err


@pytest.fixture(scope="module")
def formulas(tmp_path_factory):
    """Photos whose names a spreadsheet would run, named relatively (so that the name
    begins the path cell), and the command's CSV and JSON Lines output for them."""
    root = tmp_path_factory.mktemp("formulas")
    for seed, name in enumerate(FORMULA_NAMES):
        (root / name).write_bytes(images.jpeg(seed=20 + seed))
    for suffix in (".csv", ".jsonl"):
        assert batch(root / f"full{suffix}", "*.jpg", cwd=root).code == 0
    return root


def test_csv_cells_never_begin_a_formula_and_jsonl_keeps_names(formulas):
    with (formulas / "full.csv").open(newline="") as handle:
        cells = [cell for record in csv.reader(handle) for cell in record]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert f"'{FORMULA_NAMES[0]}" in cells
    assert set(rows_by_path(formulas / "full.jsonl")) == set(FORMULA_NAMES)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_resume_drops_a_half_written_last_row_and_recognises_formula_names(formulas, tmp_path, suffix):
    full = (formulas / f"full{suffix}").read_bytes()
    damaged = tmp_path / f"out{suffix}"
    damaged.write_bytes(full[:-20])  # the last row half-written
    run = batch(damaged, "*.jpg", "--resume", cwd=formulas)
    assert run.code == 0, run.err
    assert f"{len(FORMULA_NAMES) - 1} already in" in run.err and "half-written" in run.err
    assert damaged.read_bytes() == full


def edited(formulas: Path, suffix: str, line: bytes) -> bytes:
    """The full output with its third line, a row but not the last, replaced (split at
    line feeds only: a CSV cell may hold a bare carriage return)."""
    lines = (formulas / f"full{suffix}").read_bytes().split(b"\n")
    lines[2] = line
    return b"\n".join(lines)


def other_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"path": ["a.jpg"], "answer": ["yes"]}), buffer)
    return buffer.getvalue()


FOREIGN = {
    "csv with another header": (".csv", lambda _: b"name,size\r\nx.jpg,12\r\n"),
    "csv with a broken row": (".csv", lambda f: edited(f, ".csv", b"a,b\r")),
    "jsonl with an edited line": (".jsonl", lambda f: edited(f, ".jsonl", b'{"path": "x"}')),
    "jsonl of other values": (".jsonl", lambda _: b"[1, 2]\n[3, 4]\n"),
    "parquet that is not one": (".parquet", lambda _: b"PAR1 and then nonsense"),
    "parquet with other columns": (".parquet", lambda _: other_parquet()),
}


@pytest.mark.parametrize("case", FOREIGN)
def test_resume_refuses_a_file_it_did_not_write(formulas, tmp_path, capsys, case):
    suffix, content = FOREIGN[case]
    out = tmp_path / f"out{suffix}"
    out.write_bytes(data := content(formulas))
    code = cli.main([str(formulas / FORMULA_NAMES[1]), "--out", str(out), "--resume",
                     "--models-dir", str(SHIPPED_MODELS), "--variant", "int8"])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: " in err and "cannot resume it" in err
    assert out.read_bytes() == data  # left as it was
