"""The command line, run as a user would (subprocess)."""

import subprocess
import sys

import numpy as np
import pytest


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "npconv.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def read_pgm_or_png(path):
    if path.suffix == ".png":
        from PIL import Image

        return np.asarray(Image.open(path))
    header, _, data = path.read_bytes().partition(b"\n")
    _, width, height, _ = header.split()
    return np.frombuffer(data, np.uint8).reshape(int(height), int(width))


DEMO_FILES = {"filters.png", "kernels.png", "history.png", "learned_kernels.png", "test_image.png", "feature_maps_conv1.png",
              "feature_maps_conv2.png", "receptive_field.txt", "pruning.txt", "seed004_steps.gif"}


def test_demo_tour(tmp_path):
    for extra in ("matplotlib", "PIL", "sklearn"):
        pytest.importorskip(extra)
    result = run_cli("demo", "--quick", "--out", str(tmp_path / "out"), "--size", "64")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in range(1, 9):
        assert f"[{step}/8] " in out
    assert "scikit-learn's handwritten digits" in out and "epoch 1/1:" in out and "test accuracy" in out
    assert out.count("auto picks:") == 2  # nc.explain for both convolutions
    assert "max_pooling2d_1  pool        2       2         1      0+0     4     4    1.5  10" in out  # rf 10, jump 4
    assert "fused 2 BatchNormalization layer(s)" in out and "multiply-adds per sample" in out
    assert "identical: True" in out and "skipped" not in out
    assert out.rstrip().endswith(f"10 files in {(tmp_path / 'out').resolve()}")
    assert {p.name for p in (tmp_path / "out").iterdir()} == DEMO_FILES
    for name in sorted(DEMO_FILES):
        if name.endswith(".png"):
            pixels = read_pgm_or_png(tmp_path / "out" / name)
            assert pixels.std() > 10, f"{name} is blank"
    assert "parameters:" in (tmp_path / "out" / "pruning.txt").read_text()


def test_demo_without_the_extras(tmp_path, monkeypatch, capsys):
    """No matplotlib, Pillow or scikit-learn: generated shapes, PGM images, no figures, and it says so."""
    import sys

    from npconv.cli import main

    for name in [key for key in sys.modules if key.split(".")[0] in ("matplotlib", "PIL", "sklearn")] + ["matplotlib", "PIL", "sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)  # import fails, as when not installed
    assert main(["demo", "--quick", "--out", str(tmp_path), "--size", "48"]) == 0
    out = capsys.readouterr().out
    assert "generated shapes" in out and "[8/8] " in out and "identical: True" in out
    skipped = [line for line in out.splitlines() if line.startswith("  skipped: ")]
    assert len(skipped) == 3 and 'pip install "npconv[plot]"' in skipped[0] and "images are PGM" in skipped[1]
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.gif"))
    images = sorted((tmp_path / "filters").iterdir())
    assert len(images) == 12 and all(path.suffix == ".pgm" for path in images)
    for path in images + [tmp_path / "test_image.pgm"]:
        pixels = read_pgm_or_png(path)
        assert pixels.min() < pixels.max(), f"{path.name} is blank"
    assert read_pgm_or_png(tmp_path / "filters" / "input.pgm").shape == (48, 48)
    assert (tmp_path / "receptive_field.txt").exists() and (tmp_path / "pruning.txt").exists()


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
    assert "median of 1 repeats" in result.stdout


def test_bench_fastest_reports_the_fastest_repeat():
    result = run_cli("bench", "fmnist1", "--repeats", "2", "--threads", "1", "--fastest", "--no-algorithms", "--no-backward")
    assert result.returncode == 0, result.stderr
    assert "fastest of 2 repeats" in result.stdout and "fmnist1" in result.stdout


def test_bench_rejects_unknown_cases():
    result = run_cli("bench", "no_such_case")
    assert result.returncode == 2
    assert "unknown cases ['no_such_case']" in result.stderr


# --------------------------------------------------------------------------- npconv filter / npconv shape


def test_filter_npy_equals_scipy(tmp_path):
    import scipy.ndimage as ndi

    image = np.random.default_rng(0).random((21, 17))
    np.save(tmp_path / "in.npy", image)
    result = run_cli("filter", str(tmp_path / "in.npy"), "--kernel", "gaussian:size=5,sigma=1.2", "--mode", "symmetric", "-o", str(tmp_path / "out.npy"))
    assert result.returncode == 0, result.stderr
    assert "kernel gaussian 5x5, correlation, padding symmetric" in result.stdout
    from npconv.kernels import gaussian

    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), ndi.correlate(image, gaussian(5, 1.2), mode="reflect"), atol=1e-12)
    matrix = run_cli("filter", str(tmp_path / "in.npy"), "--kernel", "[[1, 2, 3]]", "--flip", "--mode", "circular", "-o", str(tmp_path / "m.npy"))
    assert matrix.returncode == 0, matrix.stderr
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), ndi.convolve(image, np.array([[1.0, 2.0, 3.0]]), mode="wrap"), atol=1e-12)


def test_filter_png_writes_real_images(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    from npconv.demo import synthetic_image

    gray = (synthetic_image(48) * 255).astype(np.uint8)
    rgb = np.dstack([gray, gray[::-1], gray[:, ::-1]])
    pil.fromarray(gray).save(tmp_path / "gray.png")
    pil.fromarray(rgb).save(tmp_path / "rgb.png")
    for name, source, args, mode in [
        ("box", "rgb.png", ["--kernel", "box:size=5", "--mode", "replicate"], "RGB"),  # sums to 1: clipped
        ("gradient", "rgb.png", ["--gradient", "scharr", "--gray"], "L"),  # |y| from 0..max
        ("gabor", "gray.png", ["--kernel", "gabor:size=11,theta=0.5", "--range", "stretch"], "L"),
    ]:
        out = tmp_path / f"{name}.png"
        result = run_cli("filter", str(tmp_path / source), *args, "-o", str(out))
        assert result.returncode == 0, result.stderr
        with pil.open(out) as written:
            assert written.size == (48, 48) and written.mode == mode
            pixels = np.asarray(written)
        assert pixels.min() < pixels.max(), f"{args} wrote a blank image"
    # a blur of a uint8 image keeps its levels (clip to 0..255): flat regions keep their value
    blurred = np.asarray(pil.open(tmp_path / "box.png"))
    assert blurred[24, 2, 0] == pytest.approx(gray[24, 2], abs=2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kernel", "nope"], "Received: name='nope'"),
        (["--kernel", "gaussian:sigma=-1"], "Received: sigma=-1"),
        (["--kernel", "gaussian:sigma"], "key=value literals"),
        (["--kernel", "sobel-x", "--mode", "mirror"], "npconv calls that border 'reflect'"),
        (["--kernel", "[1, 2]"], "must be a 2-D list of numbers"),
        (["--kernel", "[[1, x]]"], "Received: --kernel '[[1, x]]'"),
    ],
)
def test_filter_reports_bad_arguments(tmp_path, capsys, args, message):
    from npconv.cli import main  # in-process: the same main() the subprocess tests run, without the start-up

    np.save(tmp_path / "in.npy", np.zeros((5, 5)))
    assert main(["filter", str(tmp_path / "in.npy"), *args, "-o", str(tmp_path / "out.npy")]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and stderr.startswith("npconv filter: ")
    assert not (tmp_path / "out.npy").exists()


def test_shape_prints_the_receptive_field_table():
    # seed 003's VGG-style stack on a 32-pixel input: 30, 28, 14, 12, 10, 5; rf 16, jump 4, start 7.5
    result = run_cli("shape", "--input", "32", "conv:3", "conv:3", "pool:2", "conv:3", "conv:3", "pool:2")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["layer", "kind", "kernel", "stride", "dilation", "padding", "size", "jump", "start", "rf"]
    assert [row[6] for row in rows[1:]] == ["32", "30", "28", "14", "12", "10", "5"]
    assert rows[-1] == ["pool2", "pool", "2", "2", "1", "0+0", "5", "4", "7.5", "16"]


def test_shape_two_dims(capsys):
    from npconv.cli import main

    assert main(["shape", "--input", "28,28", "conv:3,s=2,p=same"]) == 0  # TF SAME at stride 2 pads (0, 1)
    assert capsys.readouterr().out.splitlines()[-1].split()[5:] == ["0+1", "14", "2", "1", "3"]


def test_shape_reports_bad_layers():
    result = run_cli("shape", "conv:3", "conv:0")
    assert result.returncode == 2
    assert "index 1" in result.stderr and "Received: kernel_size=0" in result.stderr
