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


def test_scores_saved_by_two_processes_are_merged_not_overwritten(tmp_path):
    path = tmp_path / "scores.json"
    qpm.save_scores(path, {"a": {"fid": 1.0}})
    qpm.save_scores(path, {"b": {"fid": 2.0}})  # another process, which read the file before "a" was there
    import json
    assert json.loads(path.read_text()) == {"a": {"fid": 1.0}, "b": {"fid": 2.0}}
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]  # no temporary file left
