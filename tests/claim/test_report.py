import json
import os
import re
import shutil

import pytest
from claim_config import tiny

from spectral._errors import UserInputError
from spectral.claim._report import iter_verdicts, load_report, rebuild, verdict_table
from spectral.claim._run import RUN_MARKER, run_claim_check
from spectral.claim._stats import Verdict
from spectral.claim._tables import verdict_cell
from spectral.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    report, table = run_claim_check(out=out, overrides=tiny(), quiet=True)
    return out, report, table


@pytest.mark.slow
def test_every_verdict_is_corrected_within_its_family(run):
    out, report, _ = run
    verdicts = list(iter_verdicts(report))
    testable = [v for v in verdicts if v["outcome"] != "untestable"]
    assert sum(summary["size"] for summary in report["family"].values()) == len(testable)
    assert len(testable) >= 16  # the spectral verdicts at least (the tiny cases may not overfit)
    for family, summary in report["family"].items():
        assert summary["method"] == "bh" and summary["alpha"] == 0.05
        members = [v for v in testable if v["family"] == family]
        assert summary["size"] == len(members) and summary["hypotheses"] == 2 * len(members)
        tests = [(v["p_value"], v["q_value"]) for v in members] + [(v["p_absent"], v["q_absent"]) for v in members]
        for p, q in tests:  # Benjamini-Hochberg over both hypotheses of every member
            rank = sum(other <= p for other, _ in tests)
            assert p <= q <= min(1.0, p * len(tests) / rank) + 1e-12
    for v in testable:
        yes = v["q_value"] < 0.05 and v["relative_effect"] <= -0.05
        assert v["outcome"] == ("yes" if yes else "no" if v["q_absent"] < 0.05 else "inconclusive")
        assert v["holds"] == {"yes": True, "no": False}.get(v["outcome"]) and (v["outcome"] == "no") == bool(v["direction"])
    for v in verdicts:
        if v["outcome"] == "untestable":
            assert v["holds"] is None and v["q_value"] is None and v["reason"]
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["family"] == report["family"] and on_disk["config"]["correction"] == "bh"


@pytest.mark.slow
def test_markdown_states_the_families_and_shows_untestable(run):
    out, report, table = run
    text = (out / "report.md").read_text()
    assert f"primary {report['family']['primary']['size']} hypotheses" in text
    assert table in text and "## Provenance" in text and "## Secondary verdicts" in text
    case = report["cases"][0]
    for name in ("shrink_removes_high_more_than_low", "slingshot_beats_optimizer_reset", "slingshot_beats_early_stop"):
        assert name in text
    assert isinstance(case["verdicts"]["shrink_removes_high_frequencies"]["window_dependent"], bool)


@pytest.mark.slow
def test_provenance_and_determinism(run, tmp_path):
    out, report, _ = run
    provenance = report["provenance"]
    assert {"torch", "numpy", "python", "device", "date", "wall_time_s"} <= set(provenance)
    assert set(provenance["wall_time_s"]) >= {"cases", "scope"}
    again, _ = run_claim_check(out=out, overrides=tiny(), quiet=True)  # resumed from the case files
    strip = lambda r: json.dumps({k: v for k, v in r.items() if k != "provenance"})
    assert strip(again) == strip(report)


@pytest.mark.slow
def test_rebuild_from_saved_results(run):
    out, report, _ = run
    (out / "report.md").unlink()
    rebuilt = rebuild(out)
    assert (out / "report.md").is_file() and rebuilt["family"] == report["family"]


def _cell(**fields):
    """A verdict as report.json holds it, with ``fields`` set (``window_dependent`` is the report's own key)."""
    dependent = fields.pop("window_dependent", None)
    holds = {"yes": True, "no": False}.get(fields.get("outcome", "untestable"))
    item = Verdict(holds=holds, **fields).to_dict()
    return verdict_cell({**item, "window_dependent": dependent} if dependent is not None else item)


def test_cells_say_each_outcome():
    assert _cell(outcome="untestable", reason="fewer than 5 seeds", relative_effect=-0.5) == "untestable"
    assert _cell(outcome="yes", relative_effect=-0.52, window_dependent=True) == "yes (-52%) †"
    assert _cell(outcome="no", relative_effect=0.012, direction="equivalent") == "no (+1%, equivalent)"
    assert _cell(outcome="no", relative_effect=0.3, direction="worse") == "no (+30%, worse)"
    assert _cell(outcome="no", relative_effect=None) == "no (n/a)"
    # the seeds that would decide an inconclusive verdict are in its reason, not its cell
    assert _cell(outcome="inconclusive", relative_effect=-0.12, seeds_needed=40) == "inconclusive (-12%)"


def test_a_cell_refuses_what_is_not_a_verdict():
    with pytest.raises(ValueError, match="verdict is missing"):
        verdict_cell({"holds": True, "relative_effect": -0.5})  # a report from before outcomes


@pytest.mark.slow
def test_one_seed_reads_untestable(tmp_path):
    report, table = run_claim_check(out=tmp_path, overrides=tiny(seeds=1, cases=tiny()["cases"][:1]), quiet=True)
    assert "untestable" in table and "| no" not in table and "yes" not in table
    assert report["family"]["primary"]["size"] == report["family"]["secondary"]["size"] == 0


@pytest.mark.slow
def test_a_diverging_negative_control_still_gives_a_report(tmp_path):
    overrides = tiny(cases=[{"signal": "2d", "activation": "relu", "bias": False}], shrink_factor=1e30,
                     sweep={"case": ""}, training={**tiny()["training"], "learning_rate": {"relu": 1e12}})
    report, _ = run_claim_check(out=tmp_path, overrides=overrides, quiet=True)
    assert (tmp_path / "report.md").is_file()
    case = report["cases"][0]
    assert case["negative_control"]["passed"] is None and case["verdicts"]["slingshot_beats_control"]["holds"] is None
    assert "untestable" in verdict_table(report["cases"])


@pytest.mark.parametrize("text", ['{"version": true, "config": {}, "cases": []}',
                                  '{"version": 2, "config": NaN, "cases": []}', "[]",
                                  "[" * 100000 + "]" * 100000])
def test_load_report_refuses_what_is_not_a_report(tmp_path, text):
    path = tmp_path / "report.json"
    path.write_text(text)
    with pytest.raises(ValueError):
        load_report(path)


def copy_run(run, tmp_path):
    """A copy of the fixture's finished run folder, to damage."""
    out = tmp_path / "run"
    shutil.copytree(run[0], out)
    return out


def edit_report(out, edit):
    report = json.loads((out / "report.json").read_text())
    edit(report)
    (out / "report.json").write_text(json.dumps(report))


def _delete(path):
    def edit(report):
        *parents, last = path
        target = report
        for key in parents:
            target = target[key]
        del target[last]
    return edit


def _set(path, value):
    def edit(report):
        *parents, last = path
        target = report
        for key in parents:
            target = target[key]
        target[last] = value
    return edit


VERDICT = ("cases", 0, "verdicts", "slingshot_beats_control")
#: Edits of a valid report.json, and the JSON path the refusal must name.
EDITS = {
    "no family": (_delete(("family",)), "family is missing"),
    "no provenance": (_delete(("provenance",)), "provenance is missing"),
    "alpha 0": (_set(("config", "alpha"), 0), "config.alpha"),
    "window tag": (_set(("config", "window"), "<script>"), "config.window"),
    "case a number": (_set(("cases",), [1]), "cases[0] must be an object"),
    "no overfit steps": (_set(("cases", 0, "overfit", "steps"), []), "cases[0].overfit.steps"),
    "threshold null": (_set(("cases", 0, "overfit", "threshold"), None), "cases[0].overfit.threshold"),
    "string p-value": (_set(VERDICT + ("p_value",), "0.01"), "verdicts.slingshot_beats_control.p_value"),
    "holds a word": (_set(VERDICT + ("holds",), "yes"), "verdicts.slingshot_beats_control.holds"),
    "one-sided interval": (_set(VERDICT + ("ci",), [0.1]), "verdicts.slingshot_beats_control.ci"),
    "numeric reason": (_set(VERDICT + ("reason",), 5), "verdicts.slingshot_beats_control.reason"),
    "no metric name": (_delete(VERDICT + ("metric",)), "verdicts.slingshot_beats_control.metric is missing"),
    "traversing id": (_set(("cases", 0, "id"), "../../../escape/pwn"), "cases[0].id"),
    "absolute id": (_set(("cases", 0, "id"), "/tmp/escape-pwn"), "cases[0].id"),
    "no seeds": (_set(("cases", 0, "seeds"), []), "cases[0].seeds"),
    "step beyond a float": (_set(("cases", 0, "overfit", "steps"), [10**400]), "cases[0].overfit.steps[0]"),
    "zero noise variance": (_set(("cases", 0, "noise_variance"), 0), "cases[0].noise_variance"),
    "no metrics": (_delete(("cases", 0, "metrics")), "cases[0].metrics is missing"),
    "ragged curve": (_set(("cases", 0, "curves", "test_mse", "slingshot"), [[0.1], [0.2, 0.3]]),
                     "cases[0].curves.test_mse.slingshot"),
    "string step": (_set(("cases", 0, "curves", "steps"), "0,20"), "cases[0].curves.steps"),
    "string factor": (_set(("cases", 0, "sweep", "factors"), ["0.2", "1.0"]), "cases[0].sweep.factors[0]"),
    "bias a word": (_set(("cases", 1, "bias"), "no"), "cases[1].bias"),
    "control without reason": (_delete(("cases", 1, "negative_control", "reason")),
                               "cases[1].negative_control.reason is missing"),
    "unknown correction": (_set(("family", "primary", "method"), "bonferroni"), "family.primary.method"),
    "nested wall time": (_set(("provenance", "wall_time_s"), {"cases": [1.0]}), "provenance.wall_time_s.cases"),
    "scope cell without size": (_set(("scope",), [{"case": "1d-tanh"}]), "scope[0].train_points is missing"),
    "precision verdict": (_set(("precision",), {"verdicts": {"x": {"holds": 1}}}), "precision.verdicts.x: verdict is missing"),
    "unknown signal": (_set(("cases", 0, "signal"), "<img src=x onerror=alert(1)>"), "cases[0].signal"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", EDITS)
def test_an_edited_report_is_refused_in_one_line_naming_the_field(run, tmp_path, capsys, name):
    edit, where = EDITS[name]
    out = copy_run(run, tmp_path)
    edit_report(out, edit)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UserInputError, match=re.escape(where)):
        load_report(out / "report.json")
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and where in error and "Traceback" not in error
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written, anywhere


@pytest.mark.slow
def test_a_crafted_id_never_writes_outside_the_folder(run, tmp_path):
    out = copy_run(run, tmp_path)
    edit_report(out, _set(("cases", 0, "id"), "../../../escape/pwn"))
    with pytest.raises(UserInputError, match="case name"):
        rebuild(out)
    assert not list(tmp_path.rglob("*pwn*"))


@pytest.mark.slow
def test_report_md_escapes_strings_from_the_files(run, tmp_path):
    out = copy_run(run, tmp_path)
    script = "<script>alert(1)</script>"

    def craft(report):
        report["cases"][0]["verdicts"]["slingshot_beats_control"]["reason"] = script + " | x\n# heading"
        report["cases"][0]["activation"] = "<img src=x onerror=alert(1)>"
        report["provenance"]["platform"] = script

    edit_report(out, craft)
    rebuild(out)
    text = (out / "report.md").read_text()
    assert "<script" not in text and "<img" not in text and "\n# heading" not in text
    assert "&lt;script>alert(1)&lt;/script> \\| x # heading" in text
    assert "<script" not in (out / "report.html").read_text()
    table = next(line for line in text.splitlines() if line.startswith("| slingshot_beats_control |"))
    assert table.count(" | ") == 9  # the crafted pipe did not add a column


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage", "fifo", "missing", "another history", "another case file"])
def test_a_damaged_or_foreign_history_leaves_out_its_figures_with_one_warning(run, tmp_path, capsys, damage):
    out = copy_run(run, tmp_path)
    cases = out / "cases"
    history = cases / "1d-tanh.history.npz"
    if damage == "truncated":
        history.write_bytes(history.read_bytes()[:500])
    elif damage == "garbage":
        history.write_bytes(b"not a history at all")
    elif damage == "fifo":
        history.unlink()
        os.mkfifo(history)
    elif damage == "missing":
        history.unlink()
    elif damage == "another history":  # a valid history, of another case (or another run)
        history.write_bytes((cases / "2d-relu-nobias.history.npz").read_bytes())
    else:  # a whole case file and history of another run: same case, other numbers
        record = json.loads((cases / "1d-tanh.json").read_text())
        record["result"]["metrics"]["test_mse"]["slingshot"][0] *= 2
        (cases / "1d-tanh.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "case 1d-tanh's history figures are left out" in error
    assert "Traceback" not in error
    figures = {p.name for p in (out / "figures").iterdir()}
    assert "1d-tanh-curves.png" in figures and not {"1d-tanh-spectra.png", "1d-tanh-heatmap.png"} & figures
    assert {"2d-relu-nobias-spectra.png", "2d-relu-nobias-heatmap.png"} <= figures
    assert "Figures from this case's history left out" in (out / "report.md").read_text()


@pytest.mark.slow
def test_a_run_with_another_config_is_refused_and_the_folder_kept(run, tmp_path, capsys):
    out = copy_run(run, tmp_path)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    other = tiny(training={**tiny()["training"], "width": 8})
    with pytest.raises(UserInputError, match="another config.*another --out"):
        run_claim_check(out=out, overrides=other, quiet=True)
    (out / RUN_MARKER).unlink()  # a folder from before the marker: its report.json says whose it is
    del before[out / RUN_MARKER]
    with pytest.raises(UserInputError, match=r"another config \(report.json\)"):
        run_claim_check(out=out, overrides=other, quiet=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_a_run_whose_metrics_are_never_finite_still_writes_its_report(tmp_path):
    overrides = tiny(seeds=3, cases=[{"signal": "1d", "activation": "sine", "bias": True}], sweep={"case": ""},
                     training={**tiny()["training"], "width": 8, "omega_0": 1e30})
    report, _ = run_claim_check(out=tmp_path, overrides=overrides, quiet=True)
    assert all(v is None for v in report["cases"][0]["metrics"]["test_mse"]["slingshot"])
    assert (tmp_path / "report.md").is_file() and (tmp_path / "figures" / "1d-sine-curves.png").is_file()


@pytest.mark.slow
def test_a_precision_section_without_its_tables_is_refused_in_one_line(run, tmp_path, capsys):
    out = copy_run(run, tmp_path)
    edit_report(out, _set(("precision",), {"verdicts": {}, "case": "1d-tanh"}))
    with pytest.raises(UserInputError, match="precision is not what `spectral run` writes"):
        rebuild(out)
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
