"""Errors as exceptions: the CLI's message as text, file/field/value/rule as attributes."""

from __future__ import annotations

import nacsim
import pytest

from conftest import committed_design_text

SYSTOLIC = "models/designs/systolic-int8.ron"


def cli_error(cli, *args: str) -> str:
    code, _, err = cli(*args)
    assert code == 2, err
    assert err.startswith("error: ")
    return err[len("error: "):].rstrip("\n")


def test_invalid_design_file(cli, root, tmp_path):
    f = tmp_path / "bad.ron"
    f.write_text(committed_design_text(root, SYSTOLIC).replace("rows: 32", "rows: 0"))
    with pytest.raises(nacsim.ConfigError) as e:
        nacsim.run(f, limit=10)
    assert isinstance(e.value, ValueError) and isinstance(e.value, nacsim.NacsimError)
    assert str(e.value) == cli_error(cli, "run", "--design", str(f), "--limit", "10")
    assert e.value.file == str(f)
    assert e.value.field == "engines[0].engine.Systolic.rows"
    assert e.value.value == "0"
    assert e.value.rule and e.value.rule in str(e.value)
    assert e.value.errors[0] == (e.value.field, e.value.value, e.value.rule)
    with pytest.raises(nacsim.ConfigError):
        nacsim.Design.load(f)


def test_parse_error_has_line_and_column(cli, root, tmp_path):
    f = tmp_path / "typo.ron"
    f.write_text(committed_design_text(root, SYSTOLIC).replace("rows: 32", "rowz: 32"))
    with pytest.raises(nacsim.ConfigError) as e:
        nacsim.Design.load(f)
    assert str(e.value) == cli_error(cli, "info", "--design", str(f))
    assert e.value.file == str(f)
    assert e.value.field == "rowz"
    lines = f.read_text().splitlines()
    assert "rowz" in lines[e.value.line - 1]
    assert e.value.column >= 1


def test_set_is_validated_like_the_file(cli, root, tmp_path):
    d = nacsim.Design.load(root / SYSTOLIC)
    with pytest.raises(nacsim.ConfigError) as e:
        d.set("engines.0.engine.rows", 0)
    f = tmp_path / "bad.ron"
    f.write_text(committed_design_text(root, SYSTOLIC).replace("rows: 32", "rows: 0"))
    from_file = cli_error(cli, "info", "--design", str(f))
    # The same words as the file's error, with the design's own file name.
    assert str(e.value) == from_file.replace(str(f), str(root / SYSTOLIC))
    assert (e.value.field, e.value.value) == ("engines[0].engine.Systolic.rows", "0")
    assert e.value.file == str(root / SYSTOLIC)
    # A refused value leaves the design as it was.
    assert d.get("engines.0.engine.rows") == 32


@pytest.mark.parametrize(
    "path, value, rule",
    [
        ("engines.0.engine.rowz", 4, "no field `rowz`"),
        ("engines.3", 4, "no list entry [3]"),
        ("engines.0.engine.rows", 2.5, "whole number"),
        ("clock_mhz", "fast", "not a name"),
    ],
)
def test_set_rejects_what_does_not_fit(root, path, value, rule):
    d = nacsim.Design.load(root / SYSTOLIC)
    with pytest.raises(nacsim.ConfigError) as e:
        d.set(path, value)
    assert rule in e.value.rule
    assert e.value.value == str(value)
    assert e.value.file == str(root / SYSTOLIC)


def test_set_rejects_other_types(root):
    d = nacsim.Design.load(root / SYSTOLIC)
    with pytest.raises(TypeError):
        d.set("clock_mhz", [1, 2])


def test_missing_data_folder(cli, tmp_path):
    missing = tmp_path / "nothing-here"
    with pytest.raises(nacsim.DataError) as e:
        nacsim.run(data=missing)
    assert str(e.value) == cli_error(cli, "run", "--data", str(missing))
    assert e.value.file == str(missing)
    assert not isinstance(e.value, nacsim.ConfigError)


def test_missing_network_file(cli, tmp_path):
    missing = tmp_path / "net.ron"
    with pytest.raises(nacsim.ConfigError) as e:
        nacsim.Network.load(missing)
    assert e.value.file == str(missing)
    assert str(e.value) == cli_error(cli, "run", "--network", str(missing))


def test_run_needs_weights(root):
    topo = nacsim.Network.load(root / "models" / "workloads" / "resnet50.csv")
    assert topo.kind == "scale-sim"
    with pytest.raises(nacsim.NacsimError, match="no weights"):
        nacsim.run(None, topo)
