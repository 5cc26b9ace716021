"""Sweep plots: files written, regions drawn and labelled."""

import errno
import struct

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402

from engine.plotting import NO_AGREEMENT_COLOR, NO_AGREEMENT_LABEL, draw_sweep, plot_sweep  # noqa: E402
from engine.sweep_axes import Axis  # noqa: E402
from engine.sweep_results import SweepResult  # noqa: E402

PARTIES = ["A", "B"]


def make_row(axes_values, status="ok", agreement=True, terms=0.5):
    row = dict(axes_values)
    row.update(
        status=status,
        agreement=agreement if status == "ok" else None,
        zone_low=terms - 0.1 if agreement and status == "ok" else None,
        zone_high=terms + 0.1 if agreement and status == "ok" else None,
        terms=terms if agreement and status == "ok" else None,
        margin_A=None,
        margin_B=None,
        expected_lifetime_years=None,
        message="",
    )
    return row


def make_2d(agrees, statuses=None, name="design.yaml"):
    """A 2-D result over x in [0, 1] and y in [0, 1]; agrees(x, y) decides each point."""
    x_axis = Axis("parties.*.discount", np.linspace(0.0, 1.0, 6))
    y_axis = Axis("environment.persistence", np.linspace(0.0, 1.0, 5))
    result = SweepResult(name, "engine", [x_axis, y_axis], PARTIES)
    for j, y in enumerate(y_axis.values):
        for i, x in enumerate(x_axis.values):
            status = statuses(i, j) if statuses else "ok"
            values = {x_axis.path: float(x), y_axis.path: float(y)}
            result.rows.append(make_row(values, status, agrees(x, y), terms=0.3 + 0.4 * x))
    return result


def make_1d(agrees, statuses=None, name="design.yaml"):
    x_axis = Axis("provisions.withdrawal.cost", np.linspace(0.0, 1.0, 11))
    result = SweepResult(name, "engine", [x_axis], PARTIES)
    for i, x in enumerate(x_axis.values):
        status = statuses(i) if statuses else "ok"
        result.rows.append(make_row({x_axis.path: float(x)}, status, agrees(x), terms=0.2 + 0.5 * x))
    return result


def png_size(path):
    # A PNG starts with an 8-byte signature and the IHDR chunk, whose data
    # begins at byte 16 with the width and height as big-endian 32-bit ints.
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def legend_labels(figure):
    legend = figure.axes[0].get_legend()
    return [] if legend is None else [text.get_text() for text in legend.get_texts()]


def grey_pixel_count(path):
    # The no-agreement fill colour, compared per channel after 8-bit rounding.
    image = imread(path)[..., :3]
    grey = int(NO_AGREEMENT_COLOR[1:3], 16) / 255
    return int(np.all(np.abs(image - grey) < 0.5 / 255, axis=-1).sum())


def test_2d_partial_agreement(tmp_path):
    result = make_2d(lambda x, y: x > 0.3 or y < 0.3)
    path = tmp_path / "sweep.png"
    plot_sweep(result, path)

    assert path.stat().st_size > 5000
    width, height = png_size(path)
    # 7.5 x 6 inches at 120 dpi.
    assert (width, height) == (900, 720)
    assert NO_AGREEMENT_LABEL in legend_labels(draw_sweep(result))
    assert grey_pixel_count(path) > 2000


def test_2d_all_agree(tmp_path):
    result = make_2d(lambda x, y: True)
    path = tmp_path / "all.png"
    plot_sweep(result, path)

    figure = draw_sweep(result)
    assert NO_AGREEMENT_LABEL not in legend_labels(figure)
    assert grey_pixel_count(path) < 200
    # The colour bar is the figure's second axes.
    assert len(figure.axes) == 2
    assert figure.axes[0].get_xlabel() == "parties.*.discount"
    assert figure.axes[0].get_ylabel() == "environment.persistence"


def test_2d_none_agree(tmp_path):
    result = make_2d(lambda x, y: False)
    path = tmp_path / "none.png"
    plot_sweep(result, path)

    figure = draw_sweep(result)
    assert legend_labels(figure) == [NO_AGREEMENT_LABEL]
    # Without terms there is no colour bar.
    assert len(figure.axes) == 1
    assert grey_pixel_count(path) > 20000


def test_2d_marks_invalid_and_failed():
    def statuses(i, j):
        if (i, j) == (0, 0):
            return "invalid"
        if (i, j) == (5, 4):
            return "failed"
        return "ok"

    figure = draw_sweep(make_2d(lambda x, y: True, statuses))
    labels = legend_labels(figure)
    assert "invalid values" in labels
    assert "solver failed" in labels
    # An invalid point is not a no-agreement point.
    assert NO_AGREEMENT_LABEL not in labels


def test_2d_compare_marks_differences():
    first = make_2d(lambda x, y: x > 0.3, name="a.yaml")
    second = make_2d(lambda x, y: x > 0.5, name="b.yaml")
    figure = draw_sweep(first, second)
    labels = legend_labels(figure)
    assert "agreement only under a.yaml" in labels
    assert "agreement only under b.yaml" not in labels
    assert "b.yaml: edge of agreement" in labels

    markers = [
        collection
        for collection in figure.axes[0].collections
        if collection.get_label() == "agreement only under a.yaml"
    ]
    # x = 0.4 is the only grid column with x > 0.3 but not x > 0.5; 5 rows of y.
    assert len(markers[0].get_offsets()) == 5


def test_1d_band_and_no_agreement(tmp_path):
    result = make_1d(lambda x: x < 0.55)
    path = tmp_path / "line.svg"
    plot_sweep(result, path)

    text = path.read_text()
    assert text.lstrip().startswith("<?xml")
    assert "<svg" in text
    labels = legend_labels(draw_sweep(result))
    assert labels[:2] == ["terms", "zone of agreement"]
    assert NO_AGREEMENT_LABEL in labels


def test_1d_all_agree_has_no_hatch(tmp_path):
    result = make_1d(lambda x: True)
    path = tmp_path / "line.png"
    plot_sweep(result, path)
    assert NO_AGREEMENT_LABEL not in legend_labels(draw_sweep(result))
    assert png_size(path) == (900, 720)


def test_1d_compare_and_invalid():
    first = make_1d(lambda x: True, statuses=lambda i: "invalid" if i == 3 else "ok", name="a.yaml")
    second = make_1d(lambda x: x > 0.5, name="b.yaml")
    labels = legend_labels(draw_sweep(first, second))
    assert "invalid values (a.yaml)" in labels
    assert "agreement only under a.yaml" in labels
    assert "terms a.yaml" in labels
    assert "terms b.yaml" in labels


def test_figure4_example_writes_png(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "figure4.py"
    spec = importlib.util.spec_from_file_location("figure4", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    output = tmp_path / "figure4.png"
    assert module.main([str(output)]) == 0
    assert f"wrote {output}" in capsys.readouterr().out
    # 11 x 4.8 inches at 120 dpi.
    assert png_size(output) == (1320, 576)
    assert grey_pixel_count(output) > 20000


def scatter_count(figure, label):
    collections = [c for c in figure.axes[0].collections if c.get_label() == label]
    return sum(len(c.get_offsets()) for c in collections)


def test_1d_compare_hatches_where_neither_agrees():
    # x = 0, 0.1, ..., 1. The first agrees for x < 0.35 (4 points), the
    # second for x < 0.55 (6 points). Neither agrees at x >= 0.6 (5 points).
    first = make_1d(lambda x: x < 0.35, name="a.yaml")
    second = make_1d(lambda x: x < 0.55, name="b.yaml")
    figure = draw_sweep(first, second)
    labels = legend_labels(figure)
    assert "no agreement under either" in labels
    assert scatter_count(figure, "agreement only under b.yaml") == 2

    # The hatched span starts halfway between x = 0.5 and x = 0.6.
    spans = [patch for patch in figure.axes[0].patches if patch.get_hatch() == "//"]
    assert len(spans) == 1
    assert spans[0].get_x() == pytest.approx(0.55)


def test_compare_ignores_unscored_points():
    # The second design is invalid at index 2 and failed at index 3, where
    # the first agrees. Those points are marked as unscored, not as
    # "agreement only under a.yaml".
    first = make_1d(lambda x: True, name="a.yaml")
    second = make_1d(
        lambda x: True,
        statuses=lambda i: {2: "invalid", 3: "failed"}.get(i, "ok"),
        name="b.yaml",
    )
    figure = draw_sweep(first, second)
    labels = legend_labels(figure)
    assert "agreement only under a.yaml" not in labels
    assert scatter_count(figure, "invalid values (b.yaml)") == 1
    assert scatter_count(figure, "solver failed (b.yaml)") == 1


def test_2d_compare_labels_first_design_region():
    first = make_2d(lambda x, y: x > 0.3, name="a.yaml")
    second = make_2d(lambda x, y: x > 0.1, name="b.yaml")
    labels = legend_labels(draw_sweep(first, second))
    assert "no agreement under a.yaml" in labels
    assert "agreement only under b.yaml" in labels


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_format_follows_suffix(tmp_path, suffix):
    # The image is drawn into a temporary file, whose name does not end in the suffix.
    path = tmp_path / f"sweep{suffix}"
    plot_sweep(make_1d(lambda x: x < 0.5), path)

    head = path.read_bytes()[:100]
    if suffix == ".png":
        assert head.startswith(b"\x89PNG")
    else:
        assert b"<svg" in head or b"<?xml" in head
    assert [item.name for item in tmp_path.iterdir()] == [path.name]


def test_failed_plot_keeps_old_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = tmp_path / "sweep.png"
    path.write_bytes(b"earlier plot")

    def write_part_then_fail(figure, stream, **options):
        stream.write(b"\x89PNG partial")
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(Figure, "savefig", write_part_then_fail)

    with pytest.raises(OSError, match="File too large"):
        plot_sweep(make_1d(lambda x: True), path)

    assert path.read_bytes() == b"earlier plot"
    assert [item.name for item in tmp_path.iterdir()] == ["sweep.png"]
