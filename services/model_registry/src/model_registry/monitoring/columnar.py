"""CSV and Parquet reference data, read batch by batch from a (spooled) file into the profile.

Memory is one batch (a few MiB of text, or one Parquet row group's batch) plus the profile
builder's bounded state, whatever the file's size. CSV is parsed by Arrow with every column as
text, then typed here with the same rules as before: numeric when every non-empty cell is a
number (Python's `float`), boolean when every one is `true`/`false`, else categorical. Columns
whose types are not all declared are read twice: once to infer them, once to build.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from model_registry.errors import InvalidReferenceData
from model_registry.monitoring.columns import ColumnTypeError, Kind
from model_registry.monitoring.ingest import CHUNK_ROWS, Feed, check_declared, columns_of
from model_registry.monitoring.profile import Profile

BLOCK_BYTES = 4 * 1024**2
TRUE_FALSE = pa.array(["true", "false"])
File = IO[bytes]


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def numbers(name: str, arr: pa.Array) -> NDArray[np.float64]:
    """Text (or numbers) as floats, NaN for missing; Arrow's cast first, Python's `float` for
    what it refuses (spaces, `1_000`), a non-number raising ColumnTypeError at its row."""
    try:
        return np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out = np.empty(len(arr), dtype=np.float64)
    for row, value in enumerate(arr.to_pylist()):
        number = np.nan if value is None else _number(value) if isinstance(value, str) else None
        if number is None:
            raise ColumnTypeError(name, row, value, "numeric")
        out[row] = number
    return out


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly `rows` rows (the last one shorter): the profile is fed the same chunks
    whatever the file's blocks or row groups, so the same data gives the same bits."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(held)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held)


def _column(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


# ---- CSV --------------------------------------------------------------------------------------


def _header(file: File) -> list[str]:
    file.seek(0)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    try:
        header = next(csv.reader(text), None)
    except UnicodeDecodeError:
        raise InvalidReferenceData("the CSV is not UTF-8") from None
    except csv.Error as exc:
        raise InvalidReferenceData(f"the CSV is malformed: {exc}") from None
    finally:
        text.detach()
    if header is None:
        raise InvalidReferenceData("the CSV is empty")
    columns_of(header)
    return header


def _diagnose(file: File, header: list[str], exc: Exception) -> InvalidReferenceData:
    """What Arrow refused, named the way a reader sees it: the first ragged row, or bad UTF-8."""
    file.seek(0)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        next(reader, None)
        for row, line in enumerate(reader):
            if len(line) != len(header):
                return InvalidReferenceData(
                    f"row {row} has {len(line)} fields, the header {len(header)}", {"row": row}
                )
    except UnicodeDecodeError:
        return InvalidReferenceData("the CSV is not UTF-8")
    except csv.Error as error:
        return InvalidReferenceData(f"the CSV is malformed: {error}")
    finally:
        text.detach()
    return InvalidReferenceData(f"the CSV is malformed: {str(exc)[:300]}")


def _csv_batches(file: File, header: list[str], keep: list[str]) -> Iterator[pa.RecordBatch]:
    file.seek(0)
    try:
        reader = pacsv.open_csv(
            file,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                include_columns=keep,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        yield from reader
    except (pa.ArrowInvalid, pa.ArrowKeyError, OSError) as exc:
        raise _diagnose(file, header, exc) from None


class _Guess:
    """What a CSV column can still be, over the batches seen so far."""

    def __init__(self) -> None:
        self.present = self.boolean = self.numeric = False
        self.fresh = True

    def see(self, name: str, arr: pa.Array) -> None:
        values = arr.drop_null()
        if not len(values):
            return
        if self.fresh:
            self.present, self.boolean, self.numeric, self.fresh = True, True, True, False
        if self.boolean:
            self.boolean = bool(pc.all(pc.is_in(pc.utf8_lower(values), value_set=TRUE_FALSE)).as_py())
        if self.numeric:
            try:
                numbers(name, values)
            except ColumnTypeError:
                self.numeric = False

    @property
    def kind(self) -> Kind:
        if self.present and self.boolean:
            return "boolean"
        return "numeric" if self.present and self.numeric else "categorical"


def _csv_kinds(file: File, header: list[str], keep: list[str], types: dict[str, Kind]) -> dict[str, Kind]:
    guesses = {name: _Guess() for name in keep if name not in types}
    if guesses:
        for batch in _csv_batches(file, header, list(guesses)):
            for name, guess in guesses.items():
                guess.see(name, batch.column(name))
    return {name: types.get(name) or guesses[name].kind for name in keep}


def _csv_values(name: str, arr: pa.Array, kind: Kind) -> Any:
    if kind == "numeric":
        return numbers(name, arr)
    return arr.to_numpy(zero_copy_only=False)


def profile_csv(
    file: File, types: dict[str, Kind], exclude: frozenset[str] = frozenset()
) -> tuple[Profile, int]:
    header = _header(file)
    keep = [name for name in header if name not in exclude]
    columns_of(keep)
    check_declared(types, keep)
    kinds = _csv_kinds(file, header, keep, types)
    feed = Feed(kinds)
    for table in rechunk(_csv_batches(file, header, keep), CHUNK_ROWS):
        with feed.chunk(table.num_rows):
            feed.builder.update({n: _csv_values(n, _column(table, n), kinds[n]) for n in keep})
    if not feed.rows:
        raise InvalidReferenceData("the CSV has a header but no rows")
    return feed.finish()


# ---- Parquet ----------------------------------------------------------------------------------


def _plain(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _arrow_kind(name: str, t: pa.DataType, declared: Kind | None) -> Kind:
    """The column's kind from its Arrow type (or the declared one, where the type allows it)."""
    t = _plain(t)
    text = pa.types.is_string(t) or pa.types.is_large_string(t)
    temporal = pa.types.is_temporal(t)
    if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        raise InvalidReferenceData(
            f"column {name!r} is {t}: only numbers, booleans, text and timestamps can be profiled; "
            "leave it out of the file",
            {"column": name, "type": str(t)},
        )
    if temporal and declared != "categorical":
        raise InvalidReferenceData(
            f"column {name!r} is {t}: declare it categorical (profiled as text) or leave it out",
            {"column": name, "type": str(t)},
        )
    if declared:
        return declared
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if text or pa.types.is_null(t):
        return "categorical"
    raise InvalidReferenceData(f"column {name!r} is {t}, which cannot be profiled", {"column": name})


def _parquet_values(name: str, arr: pa.Array, kind: Kind) -> Any:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if kind == "numeric" and not pa.types.is_boolean(arr.type):
        return numbers(name, arr)
    if pa.types.is_temporal(arr.type):
        arr = pc.cast(arr, pa.string())
    return arr.to_numpy(zero_copy_only=False)


def _parquet_file(file: File) -> pq.ParquetFile:
    file.seek(0)
    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidReferenceData(f"the body is not a readable Parquet file: {str(exc)[:300]}") from None


def profile_parquet(
    file: File, types: dict[str, Kind], exclude: frozenset[str] = frozenset()
) -> tuple[Profile, int]:
    parquet = _parquet_file(file)
    schema = parquet.schema_arrow
    columns_of(schema.names)
    keep = [name for name in schema.names if name not in exclude]
    columns_of(keep)
    check_declared(types, keep)
    kinds = {name: _arrow_kind(name, schema.field(name).type, types.get(name)) for name in keep}
    feed = Feed(kinds)
    try:
        for table in rechunk(parquet.iter_batches(batch_size=CHUNK_ROWS, columns=keep), CHUNK_ROWS):
            with feed.chunk(table.num_rows):
                feed.builder.update({n: _parquet_values(n, _column(table, n), kinds[n]) for n in keep})
    except (pa.ArrowException, OSError) as exc:
        raise InvalidReferenceData(f"the Parquet file is damaged: {str(exc)[:300]}") from None
    return feed.finish()
