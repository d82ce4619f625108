"""bench/quality_per_minute.py: the results file it writes names no one machine's folders."""

from pathlib import Path

from bench import quality_per_minute as qpm


def test_the_command_and_the_classifier_file_are_shown_relative_to_out(tmp_path):
    argv = ["--out", str(tmp_path), "--budgets", "2", "--configs", "dcgan=configs/fashion_mnist/dcgan.yaml"]
    assert qpm.portable(argv) == ["--out", "OUT", *argv[2:]]
    assert qpm.portable([f"--out={tmp_path}", "--quick"]) == ["--out=OUT", "--quick"]
    classifier = tmp_path / "quality_per_minute" / "cache" / "classifiers" / "c.pt"
    assert qpm.shown(classifier, tmp_path) == "OUT/quality_per_minute/cache/classifiers/c.pt"
    assert qpm.shown(qpm.REPO / "bench" / "results", tmp_path) == "bench/results"
    assert qpm.shown(Path("/elsewhere/c.pt"), tmp_path) == "c.pt"
