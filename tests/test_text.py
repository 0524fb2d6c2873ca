"""Free text in a table: words, a vocabulary of the training rows only, unknown words, a bag of embeddings.

The reviews are generated (no package on the registries ships a small labelled text table under an open licence
that leaptrain could use offline): each names good or bad things among neutral words, some of them seen once."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import torch

from trainer.components.text import encode_texts, fit_vocabulary, words

GOOD = ["great", "tasty", "friendly", "lovely", "quick", "fresh", "excellent", "cosy"]
BAD = ["cold", "rude", "slow", "bland", "dirty", "awful", "noisy", "stale"]
FILLER = ["the", "food", "service", "was", "and", "our", "table", "waiter", "really", "we", "had", "a", "meal"]


def review_table(path: Path, rows: int = 400, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["review", "visits", "label"])
        for i in range(rows):
            good = rng.random() < 0.5
            said = rng.sample(GOOD if good else BAD, 2) + rng.sample(FILLER, 5) + [f"once{i}"]  # a word seen once
            rng.shuffle(said)
            text = " ".join(said).capitalize() + rng.choice([".", "!", "..."])
            writer.writerow([text, rng.randint(1, 9), "positive" if good else "negative"])
    return path


def test_words_split_on_punctuation_and_keep_apostrophes_inside():
    assert words("Great food, didn't WAIT!  l'eau...") == ["great", "food", "didn't", "wait", "l'eau"]
    vocabulary = fit_vocabulary(["a b b c", "b c"], size=2, min_count=2)
    assert vocabulary == ["b", "c"]  # 'a' is seen once; the most frequent first
    ids, seen, unknown = encode_texts(["b a zebra", ""], vocabulary, max_words=2)
    assert ids.tolist() == [[2.0, 1.0], [0.0, 0.0]] and (seen, unknown) == (2, 1)  # cut at 2 words; padding


def test_a_review_column_is_read_as_words_and_the_model_learns_from_them(write_config, run_cli, tmp_path):
    review_table(tmp_path / "reviews.csv")
    config = write_config("data: {dataset: csv, path: reviews.csv, target: label}\nmodel: {name: mlp, hidden: [16]}\n")
    code, out, err = run_cli(config, "train.epochs=6", "optimizer.lr=0.01", "log.dir=runs")
    assert code == 0, err
    assert "text: review (" in out and "words" in out  # the description line says how the column is read
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["train/loss"] < lines[0]["train/loss"] * 0.7
    assert lines[-1]["val/accuracy"] >= 0.9, lines[-1]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    vocabulary = checkpoint["data"]["text"]["review"]["vocabulary"]
    assert set(GOOD + BAD) <= set(vocabulary) and not any(w.startswith("once") for w in vocabulary)  # seen once

    (tmp_path / "new.csv").write_text("review,visits\nLovely fresh food and a zorblat waiter!,2\nRude and cold,1\n")
    code, out, err = run_cli("predict", run_dir, "new.csv")  # 'zorblat': a word no training row had
    assert code == 0, err
    assert [line.split()[1] for line in out.splitlines()] == ["positive", "negative"]

    code, _, err = run_cli("export", run_dir, "--format", "pt2")
    assert code == 0, err
    code, from_export, _ = run_cli("predict", run_dir / "export" / "model.pt2", "new.csv")
    assert code == 0 and from_export == out

    code, _, err = run_cli("report", run_dir)
    assert code == 0, err
    page = (run_dir / "report.html").read_text()
    assert "<th>visits</th><th>review</th>" in page


def test_a_text_column_named_in_data_text_that_holds_numbers_or_nothing_is_refused(write_config, run_cli, tmp_path):
    review_table(tmp_path / "reviews.csv")
    config = write_config(
        "data: {dataset: csv, path: reviews.csv, target: label, text: [visits]}\nmodel: {name: mlp, hidden: [8]}\n"
    )
    code, _, err = run_cli(config)
    assert code == 2
    assert "data.text" in err and "column 'visits' holds numbers (e.g. " in err
    assert "leave it out of data.text" in err

    rows = (tmp_path / "reviews.csv").read_text().splitlines()
    blank = [rows[0]] + [",".join(["", *row.rsplit(",", 2)[1:]]) for row in rows[1:]]
    (tmp_path / "blank.csv").write_text("\n".join(blank) + "\n")
    config = write_config(
        "data: {dataset: csv, path: blank.csv, target: label, text: [review]}\nmodel: {name: mlp, hidden: [8]}\n",
        "blank.yaml",
    )
    code, _, err = run_cli(config)
    assert code == 2 and "column 'review' has no words in any training row" in err and "Traceback" not in err


def test_words_too_rare_for_a_vocabulary_say_which_key_to_lower(write_config, run_cli, tmp_path):
    review_table(tmp_path / "reviews.csv", rows=60)
    text = "data: {dataset: csv, path: reviews.csv, target: label, text: [review], min_word_count: 500}\n"
    code, _, err = run_cli(write_config(text + "model: {name: mlp, hidden: [8]}\n"))
    assert code == 2
    assert "no word of column 'review' is seen 500 times or more in the training rows" in err
    assert "data.min_word_count" in err


def test_the_vocabulary_size_and_the_embedding_size_are_the_configs(write_config, run_cli, tmp_path):
    review_table(tmp_path / "reviews.csv", rows=120)
    config = write_config("data: {dataset: csv, path: reviews.csv, target: label}\nmodel: {name: mlp, hidden: [8]}\n")
    code, out, err = run_cli(config, "data.vocab_size=5", "data.max_words=4", "model.embedding_dim=3", "log.dir=runs")
    assert code == 0, err
    assert "text: review (5 words, the first 4 of each text;" in out
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["model"]["0.bags.0.weight"].shape == (5 + 2, 3)  # the words, padding and unknown
    assert checkpoint["data"]["input_shape"] == [1 + 4]  # visits, then the ids of the first 4 words
