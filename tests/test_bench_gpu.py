"""bench/gpu.py: its CPU smoke run gives the whole table (and FID curve) with real numbers, its
CUDA plan holds every row and fits the 8-minute budget, and a failing row or compile is recorded
without ending the run."""

import contextlib
import io
import itertools
import math
import re

import pytest
import torch

from bench import gpu


def run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rows = gpu.main(argv)
    return rows, out.getvalue()


def table_rows(text):
    """The throughput table's rows as dicts by column name."""
    lines = [line for line in text.split("## FID")[0].splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == gpu.COLUMNS
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[1:]]


def number(text):
    return float(text.replace(",", ""))


@pytest.mark.integration  # end-to-end: the benchmark's smoke run
def test_smoke_run_gives_every_row_with_positive_rates_and_a_fid_curve(tmp_path):
    """One smoke run (seconds) checked whole: one test, so that no test process runs it twice."""
    out = tmp_path / "gpu.md"
    rows, printed = run(["--device", "cpu", "--smoke", "--out", str(out)])
    written = out.read_text()
    assert written in printed  # the file holds the report printed at the end
    table = table_rows(written)
    got = {(r["model"], int(r["px"]), r["precision"], r["Speed"]) for r in table}
    assert got == {(m, 8, p, s) for m in ("DCGAN", "R3GAN")
                   for p, s in (("32-true", "off"), ("32-true", "on"), ("bf16-mixed", "off"), ("16-mixed", "off"))}
    for r in table:
        assert r["peak MiB lit_gan"] == r["peak MiB plain"] == "n/a"  # no GPU memory on a CPU
        if r["precision"] == "16-mixed":  # skipped on a CPU, with the reason in the table
            assert (r["lit_gan img/s"], r["plain img/s"], r["lit/plain"]) == ("-", "-", "-")
            assert r["note"].startswith("skipped: 16-mixed is a CUDA setting"), r
            continue
        lit, plain, ratio = number(r["lit_gan img/s"]), number(r["plain img/s"]), number(r["lit/plain"])
        assert lit > 0 and plain > 0 and ratio > 0, r
        assert (lit - 0.5) / (plain + 0.5) - 0.001 <= ratio <= (lit + 0.5) / (plain - 0.5) + 0.001, r  # rounded images/s
        assert number(r["warm-up s"]) >= 0
        if r["Speed"] == "off":
            assert r["note"] == "", r
        elif r["model"] == "DCGAN":
            assert r["note"] == "compiled (eager backend, --smoke)", r
        else:  # R3GAN's compile fails on a GPU (double backward): --smoke trains it as a GPU run then does
            assert r["note"].endswith("channels_last only"), r
    assert [r.status for r in rows].count("done") == 6 and [r.status for r in rows].count("skipped") == 2
    assert all(r.lit and r.plain and r.ratio == pytest.approx(r.lit / r.plain) for r in rows if r.status == "done")
    drift = float(re.search(r"max \|weight difference\| ([\d.e+-]+)", written).group(1))
    assert drift < 1e-4  # the plain loop trains as bench/overhead.py's plain_fit does

    # the FID curve: the fastest row's settings, a point per snapshot, finite FIDs
    fastest = max((r for r in rows if r.status == "done"), key=lambda r: r.lit)
    assert f"## FID over 0.02 wall-clock minutes: {fastest.model}, {fastest.precision}" in written
    points = [line.strip("|").split("|") for line in written.splitlines() if re.match(r"\| [\d.]+ \| [\d,]+ \|", line)]
    assert [float(p[0]) for p in points] == pytest.approx([0.02 * f / 2 for f in gpu.FID_POINTS])
    batches = [number(p[1]) for p in points]
    assert batches == sorted(batches) and batches[-1] > 0
    assert all(math.isfinite(number(p[4])) and number(p[4]) > 0 for p in points)  # FID


def test_cuda_plan_has_all_rows_and_fits_the_budget():
    rows = gpu.plan("cuda")
    keys = [r.key for r in rows]
    assert keys == list(itertools.product(("DCGAN", "R3GAN"), (32, 64), ("32-true", "bf16-mixed", "16-mixed"), (False, True)))
    assert {r.model: r.batch for r in rows} == {"DCGAN": 128, "R3GAN": 64}  # the configs' batch sizes
    if not torch.cuda.is_available():
        assert all(r.status == "pending" and not r.notes for r in rows)
    cpu = gpu.plan("cpu")
    assert [r.key for r in cpu] == keys and {r.precision for r in cpu if r.status == "skipped"} == {"16-mixed"}
    fid = 60 * 2.0 + gpu.FID_S + gpu.EVAL_S * len(gpu.FID_POINTS)
    total = gpu.START_S + gpu.estimate(rows, gpu.SECONDS) + fid
    assert total <= 60 * 7.5, total / 60  # the default budget (and < 8 minutes) holds the estimate
    # the estimate counts compilation: every DCGAN Speed row, R3GAN's once (it fails and is not retried)
    eager = gpu.estimate([r for r in rows if not r.speed], gpu.SECONDS)
    assert gpu.estimate(rows, gpu.SECONDS) - 2 * eager == pytest.approx(6 * gpu.COMPILE_S["DCGAN"] + gpu.COMPILE_S["R3GAN"])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            gpu.main([])  # --device cuda by default: refused here, with the smoke command to run instead


def test_a_failing_row_and_a_failing_compile_are_recorded(monkeypatch):
    build = gpu.build_model
    calls = []

    def first_fails(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return build(*args, **kwargs)

    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(gpu, "build_model", first_fails)
    monkeypatch.setattr(gpu, "SMOKE_COMPILE", {"backend": broken_backend})
    rows, printed = run(["--device", "cpu", "--smoke", "--models", "DCGAN", "--sizes", "8", "16",
                         "--precisions", "32-true", "--fid-minutes", "0"])
    by_key = {(r.px, r.speed): r for r in rows}
    assert by_key[8, False].status == "error" and by_key[8, False].notes == ["error: RuntimeError: boom"]
    assert "| error: RuntimeError: boom |" in printed
    for key in ((16, False), (8, True), (16, True)):  # the run went on after the error
        assert by_key[key].status == "done" and by_key[key].lit > 0 and by_key[key].plain > 0
    assert "compile failed, trained eagerly" in by_key[8, True].notes[0]
    assert "no compiler here" in by_key[8, True].notes[0]
    assert by_key[16, True].notes == ["compile not retried (failed in 8 px 32-true): channels_last only"]
    assert "## FID" not in printed  # --fid-minutes 0


def test_best_row_is_the_fastest_at_the_smallest_size():
    rows = [gpu.Row("DCGAN", 32, "32-true", False, lit=10.0, status="done"),
            gpu.Row("DCGAN", 32, "bf16-mixed", True, lit=30.0, status="done"),
            gpu.Row("DCGAN", 32, "16-mixed", True, lit=50.0, status="error"),
            gpu.Row("DCGAN", 64, "bf16-mixed", False, lit=99.0, status="done")]
    assert gpu.best_row(rows) is rows[1]
    assert gpu.best_row([gpu.Row("R3GAN", 32, "32-true", False, status="skipped")]) is None
