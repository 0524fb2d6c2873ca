"""The checkpoint module's own promises, one by one: which epoch is best, files replaced in one step, a checksum
that notices any change, the other checkpoint offered for a damaged one, and every random generator restored."""

from __future__ import annotations

import errno
import os
import random
import stat

import numpy
import pytest
import torch

from trainer.atomic import saving, size_text, write_atomic
from trainer.checkpoint import (
    CheckpointWriter,
    checksum,
    load_checkpoint,
    other_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from trainer.errors import UserError
from trainer.metric_names import Monitor


@pytest.mark.parametrize(
    ("mode", "value", "best", "min_delta", "improved"),
    [
        ("min", 0.5, None, 0.0, True),  # the first value is always the best so far
        ("max", 0.5, None, 0.0, True),
        ("min", 0.4, 0.5, 0.0, True),
        ("min", 0.5, 0.5, 0.0, False),  # the same value is no improvement
        ("min", 0.6, 0.5, 0.0, False),
        ("max", 0.6, 0.5, 0.0, True),
        ("max", 0.5, 0.5, 0.0, False),
        ("max", 0.4, 0.5, 0.0, False),
        ("min", 0.45, 0.5, 0.1, False),  # better, but by less than min_delta
        ("min", 0.35, 0.5, 0.1, True),
        ("max", 0.55, 0.5, 0.1, False),
        ("max", 0.65, 0.5, 0.1, True),
    ],
)
def test_monitor_counts_an_improvement_only_beyond_min_delta_in_its_direction(mode, value, best, min_delta, improved):
    assert Monitor("val/x", mode, min_delta).improved(value, best) is improved


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("val/loss", "min"),
        ("val/accuracy", "max"),
        ("val/top5", "max"),
        ("val/r2", "max"),
        ("val/rmse", "min"),
        ("train/mae", "min"),
    ],
)
def test_monitor_knows_which_way_is_better_from_the_name(name, mode):
    assert Monitor(name).mode == mode
    assert Monitor(name, "min").mode == "min"  # said outright, it wins


def test_write_atomic_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "deep" / "er" / "notes.txt"  # missing folders are made
    write_atomic(path, "first é")
    write_atomic(path, "second")
    assert path.read_text(encoding="utf-8") == "second"
    write_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in path.parent.iterdir()) == ["notes.txt"]


def test_a_path_under_a_file_is_refused_with_a_path_that_works(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError) as failure:
        write_atomic(tmp_path / "notes.txt" / "deeper" / "schema.json", "{}")
    assert failure.value.message == (
        f"cannot write {tmp_path / 'notes.txt/deeper/schema.json'}: {tmp_path / 'notes.txt'} is a file, not a folder"
    )
    assert failure.value.fix == f"give a path in a folder, e.g. {tmp_path / 'schema.json'}"
    assert (tmp_path / "notes.txt").read_text() == "x"


def test_write_atomic_gives_the_file_the_permissions_of_any_new_file(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o640
    assert os.umask(old) == old  # reading the umask leaves it as it was


def test_a_write_that_fails_halfway_keeps_the_old_file_and_removes_the_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})

    def half_then_fail(obj, file, *args, **kwargs):
        file.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(UserError) as failure:
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert "could not save" in failure.value.message and "No space left" in failure.value.message
    assert "is intact" in failure.value.message and "free some space" in failure.value.fix
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize(
    ("number", "fix"),
    [
        (errno.ENOSPC, "free some space there"),
        (errno.EDQUOT, "free some space there"),
        (errno.EFBIG, "ulimit -f unlimited"),
        (errno.EACCES, "make {folder} writable"),
    ],
)
def test_a_failed_save_says_what_to_do_for_its_cause_and_how_to_carry_on(tmp_path, number, fix):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    path = folder / "last.pt"
    with pytest.raises(UserError) as failure, saving(path):
        raise OSError(number, os.strerror(number))
    error = failure.value
    assert error.message.startswith(f"could not save {path}: {os.strerror(number)}")
    assert "free on that disk" in error.message
    assert "is intact" not in error.message  # there was no file before
    assert fix.format(folder=folder) in error.fix
    assert error.fix.endswith(f"then carry on with: python -m trainer resume {tmp_path / 'run'}")
    assert isinstance(error.__cause__, OSError)


def test_a_failed_save_outside_a_checkpoints_folder_names_that_folder_to_resume(tmp_path):
    with pytest.raises(UserError) as failure, saving(tmp_path / "summary.json"):
        raise OSError(errno.EROFS, "Read-only file system")
    assert failure.value.fix.endswith(f"python -m trainer resume {tmp_path}")


def test_saving_lets_other_errors_through(tmp_path):
    with pytest.raises(ValueError), saving(tmp_path / "x"):
        raise ValueError("not a disk problem")


def test_the_checksum_changes_with_any_value_dtype_shape_key_or_order():
    base = {"w": torch.arange(6.0), "state": {"epoch": 2, "lr": 0.1}, "hist": [1, 2]}
    assert checksum(base) == checksum({"w": torch.arange(6.0), "state": {"epoch": 2, "lr": 0.1}, "hist": [1, 2]})
    changed = [
        {**base, "w": torch.arange(6.0) + 1e-7},
        {**base, "w": torch.arange(6.0).double()},
        {**base, "w": torch.arange(6.0).reshape(2, 3)},
        {**base, "state": {"epoch": 3, "lr": 0.1}},
        {**base, "state": {"epoch": 2, "lr": 0.1 + 1e-16}},
        {**base, "state": {"epoch": "2", "lr": 0.1}},
        {**base, "hist": (1, 2)},
        {**base, "hist": [2, 1]},
        {**base, "hist": [1, 2, 3]},
        {"state": base["state"], "w": base["w"], "hist": base["hist"]},
        {**base, "extra": None},
    ]
    sums = {checksum(c) for c in changed}
    assert checksum(base) not in sums and len(sums) == len(changed)
    # A view that is not contiguous is read by its values, as torch.save writes it.
    assert checksum(torch.arange(6.0).reshape(3, 2).t()) == checksum(torch.tensor([[0.0, 2, 4], [1, 3, 5]]))


def test_a_checkpoint_loads_back_exactly_and_a_damaged_one_is_refused_with_the_other_offered(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    save_checkpoint(folder / "best.pt", {"state": {"epoch": 3}, "w": torch.ones(2)})
    save_checkpoint(folder / "last.pt", {"state": {"epoch": 4}, "w": torch.full((2,), 2.0)})
    loaded = load_checkpoint(folder / "last.pt")
    assert loaded["state"] == {"epoch": 4} and torch.equal(loaded["w"], torch.full((2,), 2.0))
    assert "checksum" not in loaded

    raw = torch.load(folder / "last.pt", weights_only=True)
    raw["w"][0] = 7.0  # damaged on disk, but still a readable file
    torch.save(raw, folder / "last.pt")
    with pytest.raises(UserError, match=r"last\.pt is damaged") as failure:
        load_checkpoint(folder / "last.pt")
    assert f"{folder / 'best.pt'} (after epoch 3), is intact" in failure.value.fix
    assert f"cp {folder / 'best.pt'} {folder / 'last.pt'} && python -m trainer resume {tmp_path / 'run'}" in (
        failure.value.fix
    )

    torch.save({"state": {"epoch": 1}}, folder / "old.pt")  # written before checksums: loads as it is
    assert load_checkpoint(folder / "old.pt") == {"state": {"epoch": 1}}


def test_other_checkpoint_offers_last_for_best_without_a_resume_and_says_when_there_is_none(tmp_path):
    folder = tmp_path / "checkpoints"
    save_checkpoint(folder / "last.pt", {"state": {"epoch": 5}})
    offer = other_checkpoint(folder / "best.pt")
    assert offer == (
        f"the other checkpoint, {folder / 'last.pt'} (after epoch 5), is intact: evaluate or predict with it instead"
    )

    (folder / "last.pt").unlink()
    assert other_checkpoint(folder / "best.pt") == (
        "restore best.pt from a copy, or train again; a run keeps checkpoints/last.pt and best.pt"
    )
    (folder / "last.pt").write_bytes(b"not a checkpoint")
    assert other_checkpoint(folder / "best.pt").endswith(f"{folder / 'last.pt'} cannot be read either")
    assert other_checkpoint(folder / "last.pt").startswith("restore last.pt from a copy")  # itself is no other
    assert other_checkpoint(folder / "epoch3.pt").startswith("restore epoch3.pt")  # last.pt is damaged too
    save_checkpoint(folder / "last.pt", {"state": {"epoch": 6}})
    assert other_checkpoint(folder / "epoch3.pt").startswith(
        f"the other checkpoint, {folder / 'last.pt'} (after epoch 6)"
    )


def test_rng_states_bring_back_every_generator(tmp_path):
    random.seed(1), torch.manual_seed(1), numpy.random.seed(1)
    states = rng_states()
    assert set(states) >= {"python", "torch", "numpy"}
    save_checkpoint(tmp_path / "rng.pt", {"rng": states})  # plain data and tensors: loadable with weights_only
    first = (random.random(), torch.rand(3), numpy.random.rand(3))
    random.seed(2), torch.manual_seed(2), numpy.random.seed(2)
    set_rng_states(load_checkpoint(tmp_path / "rng.pt")["rng"])
    again = (random.random(), torch.rand(3), numpy.random.rand(3))
    assert first[0] == again[0] and torch.equal(first[1], again[1]) and (first[2] == again[2]).all()


def test_the_writer_saves_best_and_last_and_reports_a_failed_write_at_once(tmp_path, monkeypatch):
    failures = []
    writer = CheckpointWriter(on_failure=lambda: failures.append(1))
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    checkpoint = {"w": torch.ones(2)}
    writer.save(last, checkpoint, also_as=best)
    checkpoint["w"] += 1  # the next step changes the tensors: the save took a snapshot
    writer.wait()
    assert torch.equal(load_checkpoint(last)["w"], torch.ones(2))
    assert torch.equal(load_checkpoint(best)["w"], torch.ones(2))

    written = []
    real = os.replace

    def fail_on_best(src, dst):
        written.append(os.path.basename(dst))
        if str(dst).endswith("best.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_best)
    writer.save(last, {"w": torch.zeros(2)}, also_as=best)
    with pytest.raises(UserError, match=r"could not save .*best\.pt"):
        writer.wait()
    monkeypatch.undo()
    assert written == ["best.pt"] and failures == [1]  # best.pt first; last.pt is left as the save before
    assert torch.equal(load_checkpoint(last)["w"], torch.ones(2))
    writer.wait()  # the error was handed over once


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (5 * 2**20, "5.0 MB"),
        (3 * 2**30, "3.0 GB"),
        (2**40, "1024.0 GB"),
    ],
)
def test_sizes_read_in_the_largest_unit_below_1024(n, text):
    assert size_text(n) == text
