"""`leadscore import`: writes the export and the report; bad input is a clear error, not a trace."""

from __future__ import annotations

from leadscore.tools.cli import main
from tests.importers.conftest import FIXTURES


def test_import_writes_an_export_that_validates(tmp_path, capsys) -> None:
    out = tmp_path / "odoo"
    assert main(["import", "--from", "odoo", "--source", str(FIXTURES / "odoo"), "--out", str(out)]) == 0
    assert "source rows refused" in capsys.readouterr().out
    assert (out / "leads.csv").exists() and (out / "import_report.md").exists()
    assert main(["validate", "--data", str(out)]) == 0


def test_bad_input_is_named_without_a_traceback(tmp_path, capsys) -> None:
    assert main(["import", "--from", "salesforce", "--source", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "neither Lead.csv nor Opportunity.csv" in capsys.readouterr().err
    assert main(["import", "--from", "mapping", "--source", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "needs --mapping" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("leads: [unclosed\n")
    args = [
        "import",
        "--from",
        "mapping",
        "--mapping",
        str(bad),
        "--source",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(args) == 2 and "not valid YAML" in capsys.readouterr().err
