"""The figures and the report page on REAL cubes made here: SWE-bench through Inspect with
Gemma 3 270M on the CPU probe task, model-written evals in both formats on ../shared/data
with the same model (open-ended embedded with the local MiniLM), and the survey's example
CSV. Every builder's JSON is checked against a numpy recomputation from the cube's arrays
(tests/paper_cubes.py), then the page is opened from file:// in headless Chromium (Debian's
package, driven by selenium through Debian's chromedriver)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from paper_cubes import np_bucket_line, np_coverage, np_halves, np_kl, np_mc_line, num

pytestmark = pytest.mark.slow

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not SHARED.is_dir():  # a worktree's checkout sits elsewhere: the session layout
    SHARED = Path("/work/shared/data")
MWE = SHARED / "mwe" / "advanced-ai-risk" / "human_generated_evals"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _run(results: Path, experiment: str, *overrides: str) -> Path:
    from hydra import compose, initialize_config_dir

    from hotmess.core.engine import run_experiment
    from hotmess.core.hydra_app import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}", f"out_dir={results}", *overrides])
    return Path(run_experiment(cfg))


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    pytest.importorskip("transformers")
    pytest.importorskip("inspect_ai")
    if not MWE.is_dir():
        pytest.skip("needs ../shared/data/mwe")
    import torch

    from hotmess.paper.build import build_figures

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("paper_real")
    results = root / "results"
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("INSPECT_LOG_LEVEL", "warning")
    try:
        _run(results, "swebench_probe", "draws=2")
        _run(results, "mwe_cpu", f"task.data_dir={MWE}", "task.subsets=[survival-instinct,myopic-reward]",
             "task.per_subset=2", "draws=3", "seeds_per_context=3", "budgets=[8]", "sampling.max_tokens=12")
        _run(results, "mwe_open_cpu", f"task.data_dir={MWE}", "task.subsets=[survival-instinct]",
             "task.per_subset=2", "draws=3", "seeds_per_context=3", "budgets=[8]", "sampling.max_tokens=12")
        _run(results, "survey")
    finally:
        mp.undo()
    out = root / "figures"
    report = build_figures(results, out, settings={"n_buckets": 2})
    cubes = {c: xr.open_dataset(results / c / "cube.nc").load()
             for c in ("swebench_probe", "mwe_cpu", "mwe_open_cpu", "survey")}
    data = {n: json.loads((out / f"{n}.json").read_text()) for n in report.built}
    return {"report": report, "out": out, "cubes": cubes, "data": data}


EXPECTED = {"fig02b", "fig03b", "fig17b", "fig25", "fig02c", "fig23", "fig24", "fig19", "fig04b", "fig27"}


def test_every_figure_of_these_cubes_is_built(real):
    rep = real["report"]
    assert rep.ok, rep.failed
    assert EXPECTED <= set(rep.built)
    for name in EXPECTED - {"fig19"}:
        assert (real["out"] / f"{name}.png").stat().st_size > 0 and (real["out"] / f"{name}.pdf").exists()
    for stamp in real["data"].values():
        for cube, info in stamp["cubes"].items():
            assert len(info["sha256"]) == 64 and info["experiment"] == cube
        assert stamp["claims"] and stamp["claims"][0]["verdict"] in ("agrees", "disagrees", "not enough data")


def test_swebench_figures_match_numpy(real):
    ds, data = real["cubes"]["swebench_probe"], real["data"]
    passes = ds["outcome"].values[:, 0, 0]
    for name, key, length in (("fig02b", "lines", "actions"), ("fig25", "actions", "actions"),
                              ("fig25", "output_tokens", "output_tokens")):
        lines = data[name]["data"]["lines"] if key == "lines" else data[name]["data"]["columns"][key]
        for m, line in enumerate(lines):
            exp = np_bucket_line(passes[m], ds[length].values[m, 0, 0], 2)
            for k, vals in exp.items():
                np.testing.assert_allclose(num(line[k]), vals, rtol=1e-12, err_msg=f"{name} {key} {k}")
    # per task, against the raw pass/fail arrays: coverage error of the whole task
    for q in range(passes.shape[1]):
        bias, var, err, score = np_coverage(passes[0, q])
        assert err == pytest.approx(bias + var)
    for name in ("fig03b", "fig17b"):
        for m, line in enumerate(data[name]["data"]["lines"]):
            exp = np_halves(passes[m], ds["actions"].values[m, 0, 0])
            for half in ("short", "long"):
                got = {k: (np.nan if v is None else v) for k, v in line[half].items()}
                for k, v in exp[half].items():
                    np.testing.assert_allclose(got[k], v, rtol=1e-12, err_msg=f"{name} {half} {k}")


def test_mwe_figures_match_numpy(real):
    mc, op, data = real["cubes"]["mwe_cpu"], real["cubes"]["mwe_open_cpu"], real["data"]
    for subset, lines in data["fig23"]["data"]["subsets"].items():
        present = subset in set(mc["subject"].values.astype(str))
        assert bool(lines) == present
        for m, line in enumerate(lines):
            for k, vals in np_mc_line(mc, m, subset, 2).items():
                np.testing.assert_allclose(num(line[k]), vals, rtol=1e-9, atol=1e-12, err_msg=f"{subset} {k}")
    for m, line in enumerate(data["fig02c"]["data"]["mc"]):
        for k, vals in np_mc_line(mc, m, "survival-instinct", 2).items():
            np.testing.assert_allclose(num(line[k]), vals, rtol=1e-9, atol=1e-12, err_msg=k)
    emb = op["outcome"].values[0, 0, 0]  # question, draw, embedding
    ok = np.isfinite(emb).all(-1)
    var = np.array([((e[o] - e[o].mean(0)) ** 2).sum(-1).mean() if o.any() else np.nan for e, o in zip(emb, ok, strict=True)])
    x = op["output_tokens"].values[0, 0, 0].mean(-1)
    (line,) = data["fig24"]["data"]["subsets"]["survival-instinct"]
    np.testing.assert_allclose(num(line["variance"]), var, rtol=1e-6)
    np.testing.assert_allclose(num(line["x"]), x, rtol=1e-12)
    good = np.isfinite(var) & (var > 0)
    if np.unique(x[good]).size >= 2:
        assert line["fit"]["slope"] == pytest.approx(np.polyfit(np.log(x[good]), np.log(var[good]), 1)[0], rel=1e-6)
    else:
        assert line["fit"]["slope"] is None


def test_transcripts_match_the_cube(real):
    mc, data = real["cubes"]["mwe_cpu"], real["data"]["fig19"]["data"]
    (line,) = [ln for ln in data["lines"] if ln["cube"] == "mwe_cpu"]
    p, t = mc["outcome"].values[0, 0, 0], mc["target"].values
    var = np.array([np_kl(p[q], t[q])[1] for q in range(p.shape[0])])
    order = np.argsort(-var, kind="stable")[: len(line["questions"])]
    np.testing.assert_allclose([q["variance"] for q in line["questions"]], var[order], rtol=1e-9, atol=1e-12)
    for q in line["questions"]:
        i = list(mc["question"].values).index(q["id"])
        assert [d["text"] for d in q["draws"]] == [str(s) for s in mc["text"].values[0, 0, 0, i]]
        assert [d["reasoning_text"] for d in q["draws"]] == [str(s) for s in mc["reasoning_text"].values[0, 0, 0, i]]
        assert [d["output_tokens"] for d in q["draws"]] == mc["output_tokens"].values[0, 0, 0, i].tolist()


def test_survey_figures_match_the_cube(real):
    ds, data = real["cubes"]["survey"], real["data"]
    ents = data["fig04b"]["data"]["entities"]
    x = ds["mean"].sel(measure="intelligence").values
    y = ds["mean"].sel(measure="incoherence").values
    np.testing.assert_allclose([ents[str(e)]["incoherence_mean"] for e in ds["entity"].values], y)
    slope = np.polyfit(x, y, 1)[0]
    assert data["fig04b"]["data"]["trend"]["slope"] == pytest.approx(slope)
    assert data["fig04b"]["claims"][0]["verdict"] == ("agrees" if slope > 0 else "disagrees")
    groups = data["fig27"]["data"]["groups"]
    assert list(groups) == ["biological", "AI", "organisation"]
    assert "adult human" in groups["biological"]  # humans are biological (Fig. 27)


# ----------------------------------------------------------------------------- the browser
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
                                                      "(apt-get install chromium chromium-driver)")
def test_report_page_in_headless_chromium(real):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    rep, out = real["report"], real["out"]
    page = (out / "index.html").resolve()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="hotmess-chromium-")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1280,1600"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get(page.as_uri())
        assert driver.title.startswith("hotmess")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
        images = driver.execute_script(
            "return Array.from(document.querySelectorAll('img.fig-image')).map(i => [i.alt, i.complete, i.naturalWidth])")
        with_png = sorted(n for n, p in rep.built.items() if p.suffix == ".png")
        assert sorted(i[0] for i in images) == with_png
        assert all(done and width > 0 for _, done, width in images), images
        rows = driver.find_elements(By.CSS_SELECTOR, "#claims-table tr.claim")
        assert sorted(r.get_attribute("data-figure") for r in rows) == sorted(rep.built)  # one claim each
        # the transcript viewer: pick the mwe_cpu line, sort by variance, pick the 2nd question
        fig19 = real["data"]["fig19"]["data"]["lines"]
        li = next(i for i, ln in enumerate(fig19) if ln["cube"] == "mwe_cpu")
        Select(driver.find_element(By.ID, "tv-line")).select_by_value(str(li))
        table = driver.find_element(By.CSS_SELECTOR, f'.tv-line[data-line="{li}"] table')
        table.find_element(By.XPATH, ".//th[normalize-space()='KL variance']").click()
        shown = [float(tr.find_elements(By.TAG_NAME, "td")[3].text)
                 for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr.q")]
        assert shown == sorted(shown, reverse=True) and len(shown) == len(fig19[li]["questions"])
        row = table.find_elements(By.CSS_SELECTOR, "tbody tr.q")[1]
        qi = int(row.get_attribute("data-q"))
        row.click()
        visible = [d for d in driver.find_elements(By.CSS_SELECTOR, ".draws") if d.is_displayed()]
        assert len(visible) == 1
        assert (visible[0].get_attribute("data-line"), visible[0].get_attribute("data-q")) == (str(li), str(qi))
        q = fig19[li]["questions"][qi]
        cards = visible[0].find_elements(By.CSS_SELECTOR, ".draw")
        assert len(cards) == len(q["draws"]) == 3
        for card, d in zip(cards, q["draws"], strict=True):
            assert f"draw {d['draw']}" in card.text
            if d["text"].strip():
                assert d["text"].strip().splitlines()[0][:40] in card.text
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        shot = out / "index_screenshot.png"
        driver.execute_script("arguments[0].scrollIntoView()", visible[0])
        driver.save_screenshot(str(out / "index_transcripts.png"))
        full = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "format": "png"})
        import base64

        shot.write_bytes(base64.b64decode(full["data"]))
        keep = os.environ.get("HOTMESS_TEST_ARTIFACTS")  # pytest's tmp dirs rotate: keep a copy
        if keep:
            shutil.copytree(out, Path(keep) / "paper_real_figures", dirs_exist_ok=True)
            shot = Path(keep) / "paper_real_figures" / shot.name
        print(f"\nscreenshots: {shot} {shot.with_name('index_transcripts.png')}")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
