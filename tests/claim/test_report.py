import json

import pytest
from claim_config import tiny

from spectral.claim._report import iter_verdicts, load_report, rebuild, verdict_table
from spectral.claim._run import run_claim_check
from spectral.claim._tables import verdict_cell


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


def test_cells_say_each_outcome():
    item = {"outcome": "untestable", "holds": None, "reason": "fewer than 5 seeds", "relative_effect": -0.5}
    assert verdict_cell(item) == "untestable"
    assert verdict_cell({"outcome": "yes", "relative_effect": -0.52, "window_dependent": True}) == "yes (-52%) †"
    assert verdict_cell({"outcome": "no", "relative_effect": 0.012, "direction": "equivalent"}) == "no (+1%, equivalent)"
    assert verdict_cell({"outcome": "no", "relative_effect": 0.3, "direction": "worse"}) == "no (+30%, worse)"
    assert verdict_cell({"outcome": "inconclusive", "relative_effect": -0.12, "seeds_needed": 40}) == \
        "inconclusive (-12%, ~40 seeds)"
    assert verdict_cell({"holds": False, "relative_effect": None}) == "no (n/a)"  # a report from before outcomes


def test_cells_read_the_outcome():
    assert verdict_cell({"outcome": "inconclusive", "holds": None, "relative_effect": -0.08}) == "inconclusive (-8%)"
    assert verdict_cell({"outcome": "untestable", "holds": None, "relative_effect": -0.5}) == "untestable"


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
