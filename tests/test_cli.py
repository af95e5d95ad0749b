"""The command line, run as a user would (subprocess)."""

import subprocess
import sys

import numpy as np


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "npconv.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def read_pgm_or_png(path):
    if path.suffix == ".png":
        from PIL import Image

        return np.asarray(Image.open(path))
    header, _, data = path.read_bytes().partition(b"\n")
    _, width, height, _ = header.split()
    return np.frombuffer(data, np.uint8).reshape(int(height), int(width))


def test_demo_runs_and_writes_images(tmp_path):
    result = run_cli("demo", "--out", str(tmp_path / "out"), "--size", "64")
    assert result.returncode == 0, result.stderr
    assert "identical: True" in result.stdout
    assert "auto picks:" in result.stdout
    images = sorted((tmp_path / "out").iterdir())
    assert {p.stem for p in images} == {"input", "sobel_x", "sobel_y", "laplacian", "gradient_magnitude"}
    for path in images:
        pixels = read_pgm_or_png(path)
        assert pixels.shape == (64, 64)
        assert pixels.min() < pixels.max(), f"{path.name} is blank"


def test_explain_command():
    result = run_cli("explain", "--input", "1,28,28,1", "--kernel", "3,3,1,32", "--stride", "2", "--padding", "same")
    assert result.returncode == 0, result.stderr
    assert "output (1, 14, 14, 32)" in result.stdout
    assert "padding=(0, 1)" in result.stdout


def test_explain_command_reports_bad_arguments():
    result = run_cli("explain", "--input", "1,28,28,1", "--kernel", "3,3,1,32", "--stride", "0")
    assert result.returncode == 2
    assert "Received: stride=0" in result.stderr


def test_bench_runs_a_case_and_prints_the_ratio_table():
    result = run_cli("bench", "fmnist2", "--repeats", "1", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CPU: ")
    assert "fmnist2" in result.stdout and "geomean (suite)" in result.stdout
    assert "forward ms per algorithm:" in result.stdout


def test_bench_rejects_unknown_cases():
    result = run_cli("bench", "no_such_case")
    assert result.returncode == 2
    assert "unknown cases ['no_such_case']" in result.stderr
