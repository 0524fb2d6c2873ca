"""Hostile and broken input stays bounded: YAML bombs, odd bytes and files that are no config, image decompression
bombs, and big CSV tables read without a Python string per cell."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer import yamlio
from trainer.components import image_folder, tables
from trainer.config import CsvData, ImageFolderData
from trainer.errors import ConfigError


def refusal(path: Path) -> tuple[str, str]:
    """The one problem load_config_file reports for `path`, and where it points."""
    with pytest.raises(ConfigError) as caught:
        yamlio.load_config_file(path)
    (problem,) = caught.value.problems
    return problem.message, caught.value.source.where(problem.key)


def test_an_anchor_bomb_is_refused_before_it_is_expanded(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for parent, child in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{child}: &{child} [{','.join([f'*{parent}'] * 9)}]")  # 9**9 values once expanded
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 400
    tracemalloc.start()
    message, where = refusal(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert f"more than {yamlio.MAX_NODES:,} values once its aliases (*name) are expanded" in message
    assert "Try:" in message and where == f"{path}:1"
    assert peak < 20_000_000  # the nodes as written, never their expansion


def test_too_many_aliases_and_too_deep_nesting_are_refused_with_their_limit(tmp_path):
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("x: &x 1\nitems: [" + ", ".join(["*x"] * (yamlio.MAX_ALIASES + 1)) + "]\n")
    message, _ = refusal(aliases)
    assert f"more than {yamlio.MAX_ALIASES:,} aliases" in message
    deep = tmp_path / "deep.yaml"
    deep.write_text("model:\n  hidden: " + "[" * 500 + "]" * 500 + "\n")
    message, where = refusal(deep)
    assert f"nested more than {yamlio.MAX_DEPTH} deep" in message and where == f"{deep}:2"


def test_a_config_of_megabytes_is_refused_unread_with_its_size_and_the_limit(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("".join(f"key_{i:07d}: {i}\n" for i in range(80_000)))
    message, _ = refusal(path)
    assert f"{path.stat().st_size:,} bytes" in message and f"{yamlio.MAX_CONFIG_BYTES:,}" in message


def test_aliases_a_config_uses_on_purpose_still_load_with_their_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("base: &opt {name: adamw, lr: 1e-3}\noptimizer:\n  <<: *opt\n  lr: 3e-3\nsizes: &s [1, 2]\nb: *s\n")
    data, source = yamlio.load_config_file(path)
    assert data["optimizer"] == {"name": "adamw", "lr": 3e-3} and data["b"] == [1, 2]
    assert source.where("optimizer.lr") == f"{path}:4"  # a key written beside a merge overrides the merged one


def test_a_key_written_twice_beside_a_merge_is_still_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("base: &opt {lr: 1e-3}\noptimizer:\n  <<: *opt\n  lr: 3e-3\n  lr: 1e-2\n")
    message, where = refusal(path)
    assert "appears twice (first on line 4)" in message and where == f"{path}:5"


def test_a_byte_that_is_not_utf8_in_a_comment_names_its_line_and_byte(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"name: t\n# r\xe9sum\xe9 of the run\nmodel: mlp\n")
    message, where = refusal(path)
    assert where == f"{path}:2"
    assert "line 2 is not UTF-8" in message and "0xe9" in message and "résumé" in message and "UTF-8" in message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_config_saved_with_a_byte_order_mark_is_read(tmp_path, encoding):
    path = tmp_path / "config.yaml"
    path.write_bytes("name: t\nmodel: {name: mlp}\n".encode(encoding))
    data, _ = yamlio.load_config_file(path)
    assert data == {"name": "t", "model": {"name": "mlp"}}


def write_png(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (4, 4)).save(path)


@pytest.mark.parametrize(
    ("name", "make", "words"),
    [
        ("photo.png", write_png, "a PNG image, not a YAML config"),
        ("last.pt", lambda path: torch.save({"model": {}}, path), "a zip archive (a PyTorch checkpoint .pt is one)"),
        ("data.bin", lambda path: path.write_bytes(b"abc\n\x00\x01\x02"), "a binary file (a zero byte on line 2)"),
        ("bell.yaml", lambda path: path.write_text("name: t\nmodel: a\x07b\n"), "line 2 holds the control character"),
        ("key.yaml", lambda path: path.write_text("? [a, b]\n: 1\n"), "line 1 uses a list as a key"),
        ("folder.yaml", lambda path: path.mkdir(), "it is a folder"),
    ],
)
def test_a_file_that_is_no_config_ends_in_a_message(tmp_path, run_cli, name, make, words):
    make(tmp_path / name)
    code, out, err = run_cli("check", name)
    assert code == 2, err
    assert words in err and "Try:" in err
    assert "Traceback" not in out + err


def test_an_empty_config_says_what_is_missing(tmp_path, run_cli):
    (tmp_path / "empty.yaml").write_text("")
    code, out, err = run_cli("check", "empty.yaml")
    assert code == 2 and "model" in err and "Traceback" not in out + err


def bomb_png(width: int, height: int, rows_per_block: int = 1000) -> bytes:
    """A grey PNG of width x height black pixels, kilobytes on disk: one compressed block of rows, repeated."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    rows = bytes(width + 1) * rows_per_block  # each row: its filter byte, then the pixels
    block = deflate.compress(rows) + deflate.flush(zlib.Z_FULL_FLUSH)  # a full flush forgets history: repeatable
    adler = ((((width + 1) * height) % 65521) << 16) | 1  # Adler-32 of zeros: a stays 1, b counts the bytes
    stream = b"\x78\xda" + block * (height // rows_per_block) + deflate.flush() + adler.to_bytes(4, "big")

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def test_the_bomb_png_is_a_real_image():
    from PIL import Image

    with Image.open(io.BytesIO(bomb_png(300, 2000))) as image:
        image.load()
        assert image.size == (300, 2000) and image.getextrema() == (0, 0)


def photos(root: Path) -> Path:
    from PIL import Image

    for name, colour in (("cat", (200, 40, 40)), ("dog", (40, 40, 200))):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), tuple(c + i for c in colour)).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_a_20000_by_20000_png_is_skipped_by_its_header_and_named(tmp_path, monkeypatch, cache):
    root = photos(tmp_path / "photos")
    bomb = root / "cat" / "huge.png"
    bomb.write_bytes(bomb_png(20_000, 20_000))
    assert bomb.stat().st_size < 1_000_000
    decoded = []
    original = image_folder._decode_torchvision

    def counted(data: bytes, grayscale: bool) -> torch.Tensor:
        decoded.append(len(data))
        return original(data, grayscale)

    monkeypatch.setattr(image_folder, "_decode_torchvision", counted)
    cfg = ImageFolderData(dataset="image_folder", root=str(root), image_size=8, cache=cache, workers=0)
    data = image_folder.build_image_folder(cfg, torch.device("cpu"), 0)
    (warning,) = [w for w in data.warnings if "huge.png" in w]
    assert "cat/huge.png (20,000 x 20,000 pixels, more than data.max_pixels (90,000,000)" in warning
    assert "data.max_pixels: 400000000" in warning
    assert data.train is not None and len(decoded) <= 8  # the eight small photos; never the bomb


def test_max_pixels_is_the_limit_and_raising_it_reads_the_image(tmp_path):
    path = tmp_path / "tall.png"
    path.write_bytes(bomb_png(100, 2000))
    with pytest.raises(image_folder.TooManyPixels, match="100 x 2,000 pixels"):
        image_folder.read_image(path, (8, 8), grayscale=True, max_pixels=199_999)
    assert image_folder.read_image(path, (8, 8), grayscale=True, max_pixels=200_000).shape == (1, 8, 8)


@pytest.mark.parametrize("suffix", [".jpg", ".bmp", ".gif"])
def test_other_formats_are_measured_by_their_header_too(tmp_path, suffix):
    from PIL import Image

    path = tmp_path / f"wide{suffix}"
    Image.new("RGB", (300, 20)).save(path)
    assert image_folder.pixel_size(path) == (6000, "300 x 20")
    with pytest.raises(image_folder.TooManyPixels, match="300 x 20 pixels"):
        image_folder.verify_image(path, max_pixels=5999)
    image_folder.verify_image(path, max_pixels=6000)


def write_numbers(path: Path, rows: int, columns: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, columns)).round(5)
    values[:, -1] = rng.integers(0, 3, size=rows)
    header = ",".join([f"x{i}" for i in range(columns - 1)] + ["label"])
    np.savetxt(path, values, delimiter=",", header=header, comments="", fmt="%.5f")
    return values


def test_a_table_of_plain_numbers_is_one_array_not_a_string_per_cell(tmp_path):
    path = tmp_path / "numbers.csv"
    values = write_numbers(path, 20_000, 50)
    tracemalloc.start()
    data = tables.build_table(CsvData(dataset="csv", path=str(path), target="label"), torch.device("cpu"), 0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 12 * values.size * 4  # float32 size: 4 MB; a string per cell was some 80 times that
    assert data.info["class_names"] == ["0", "1", "2"] and data.info["input_shape"] == [49]
    table = tables.read_table(str(path), "data.path")
    assert table.values is not None and len(table.rows) == 20_000 and table.lines[:2] == [2, 3]
    assert table.cells("x0")[:2] == [tables.number_text(v) for v in values[:2, 0].tolist()]
    assert table.rows[1][-1] == str(int(values[1, -1]))


def test_the_fast_reader_encodes_exactly_as_the_careful_one(tmp_path, monkeypatch):
    path = tmp_path / "numbers.csv"
    write_numbers(path, 500, 6)
    cfg = CsvData(dataset="csv", path=str(path), target="label", task="regression")
    fast = tables.build_table(cfg, torch.device("cpu"), 0)
    monkeypatch.setattr(tables, "read_plain_numbers", lambda path, key: None)
    careful = tables.build_table(cfg, torch.device("cpu"), 0)
    assert fast.info == careful.info
    for split in ("train", "val"):
        (x_fast, y_fast), (x_slow, y_slow) = (next(iter(getattr(d, split))) for d in (fast, careful))
        assert torch.equal(x_fast, x_slow) and torch.equal(y_fast, y_slow)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("1.5,2\n,3\n", "missing values"),  # an empty cell: the careful reader names it
        ("1.5,2\nnan,3\n", "missing values"),
        ("1.5,2\n1.5,2,3\n", "line 3: 3 cells"),
    ],
)
def test_a_table_the_fast_reader_cannot_take_gets_the_careful_readers_message(tmp_path, body, words):
    path = tmp_path / "t.csv"
    path.write_text("a,label\n" + body * 3)
    with pytest.raises(tables.UserError, match=words):
        tables.build_table(CsvData(dataset="csv", path=str(path), target="label"), torch.device("cpu"), 0)
