"""A model too large for memory is rejected with a clear error before solving."""

from __future__ import annotations

from pathlib import Path

from engine import cli

CATALOG = Path(__file__).resolve().parents[1] / "treaties"


def test_daily_period_rejected_as_too_large(tmp_path, capsys):
    # At daily resolution the ten-year term alone needs 3,650 clock positions and
    # the two-year suspension hundreds of phases, far above the value limit.
    text = (CATALOG / "cyber-flexible.yaml").read_text()
    text = text.replace("period: 3 months", "period: 1 day").replace("notice: 6 months", "notice: 45 days")
    path = tmp_path / "daily.yaml"
    path.write_text(text)

    code = cli.main(["score", str(path)])

    error = capsys.readouterr().err
    assert code == 3
    assert "the model is too large to solve" in error
    assert "use a coarser `period`" in error
    assert "Traceback" not in error
