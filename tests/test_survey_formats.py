"""Real surveys read as they come: element/oxide columns by symbol, units, methods, formats, the sample
filter, site selection by commodity, and the import report (issue 26)."""

import json
from argparse import Namespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from mstgat_core.cli import main
from mstgat_core.data import io
from mstgat_core.data.columns import parse_column
from mstgat_core.data.points import load_points
from mstgat_core.data.sites import commodity_columns, commodity_match, value_match
from mstgat_core.data.tables import where_mask
from mstgat_core.errors import DataError

RNG = np.random.default_rng(26)
N = 12


def _table(columns: dict, n=N, lonlat=False) -> pd.DataFrame:
    if lonlat:
        frame = pd.DataFrame({"lon": np.linspace(44.0, 44.2, n), "lat": np.linspace(23.3, 23.5, n)})
    else:
        frame = pd.DataFrame({"x": 400_000 + 500.0 * np.arange(n), "y": 7_000_000 + 300.0 * np.arange(n)})
    for name, values in columns.items():
        frame[name] = values
    return frame


def _load(tmp_path, table, **kw):
    path = tmp_path / "s.csv"
    table.to_csv(path, index=False)
    kw.setdefault("crs", None if "lon" in table.columns else "EPSG:32635")
    return load_points(path, **kw)


# --------------------------------------------------------------------- column names


@pytest.mark.parametrize(
    "name, analyte, unit, method",
    [
        ("Au", "Au", None, ""),
        ("Au_ppb", "Au", "ppb", ""),
        ("Au_ppb_icp", "Au", "ppb", "icp"),
        ("au_PPB", "Au", "ppb", ""),
        ("Au (ppb)", "Au", "ppb", ""),
        ("Au [ppb]", "Au", "ppb", ""),
        ("Au_ppm_511P", "Au", "ppm", "511P"),
        ("Au_511P", "Au", None, "511P"),
        ("Au_fa", "Au", None, "fa"),
        ("Pt_ppt", "Pt", "ppt", ""),
        ("Cu_mg/kg", "Cu", "ppm", ""),
        ("SiO2_percent_xrf", "SiO2", "%", "xrf"),
        ("SIO2_PCT", "SiO2", "%", ""),
        ("SiO2 (wt%)", "SiO2", "%", ""),
        ("SiO2_wt_pct", "SiO2", "%", ""),
        ("Al2O3_%", "Al2O3", "%", ""),
        ("TFe2O3_percent_xrf", "Fe2O3T", "%", "xrf"),
        ("Fe2O3T_pct", "Fe2O3T", "%", ""),
        ("Fe2O3(T)", "Fe2O3T", None, ""),
        ("FeOT", "FeOT", None, ""),
        ("LOI_percent_gr", "LOI", "%", "gr"),
        ("TC_percent_irs", "TC", "%", "irs"),
        ("TOC", "TOC", None, ""),
        ("H2O+", "H2O+", None, ""),
        ("H2Oneg_pct", "H2O-", "%", ""),
        ("CaO", "CaO", None, ""),
    ],
)
def test_column_names_read_to_the_right_analyte_unit_and_method(name, analyte, unit, method):
    parsed = parse_column(name)
    assert (parsed.analyte, parsed.unit, parsed.method) == (analyte, unit, method)
    assert parsed.role in ("value", "bare")


@pytest.mark.parametrize(
    "name, role",
    [
        ("Zr_511P_T", "flag"),
        ("Cu_T", "flag"),
        ("Au_flag", "flag"),
        ("Au_zscore", "derived"),
        ("Cu_rank", "derived"),
        ("Au_furlong", "unknown-unit"),
        ("id", None),
        ("Sample", None),
        ("sample_type", None),
        ("lab_id", None),
        ("layer", None),
        ("path", None),
        ("Year", None),
        ("No_sample", None),
        ("Co_ordinate", None),
        ("LABnegNR_N", None),
    ],
)
def test_flags_derived_values_and_metadata_are_not_elements(name, role):
    parsed = parse_column(name)
    assert (parsed.role if parsed is not None else None) == role


def test_units_are_converted_to_ppm_for_elements_and_percent_for_oxides(tmp_path):
    ones = np.ones(N)
    table = _table(
        {
            "Au_ppb": 1000 * ones,
            "Pt_ppt": 1e6 * ones,
            "S_pct": 0.5 * ones,
            "Cu_g/t": 7 * ones,
            "SiO2_ppm": 10_000 * ones,
            "Al2O3_percent": 12 * ones,
            "Zn (ppm)": 50 * ones,
        }
    )
    s = _load(tmp_path, table)
    assert s.elements == ["Au", "Pt", "S", "Cu", "SiO2", "Al2O3", "Zn"]
    expected = {"Au": 1.0, "Pt": 1.0, "S": 5000.0, "Cu": 7.0, "SiO2": 1.0, "Al2O3": 12.0, "Zn": 50.0}
    for element, value in expected.items():
        np.testing.assert_allclose(s.table[element], value)
    assert s.units == {e: ("%" if e in ("SiO2", "Al2O3") else "ppm") for e in s.elements}
    lines = s.report.text()
    assert "converted ppb -> ppm (x 0.001): Au" in lines and "converted ppt -> ppm (x 1e-06): Pt" in lines
    assert "converted % -> ppm (x 10000): S" in lines and "converted ppm -> % (x 0.0001): SiO2" in lines


def test_the_users_bare_symbol_csv_is_read(tmp_path):
    """The reported CSV: bare element and oxide symbols, nothing else, was refused ("no element columns")."""
    names = "Br Cl Cr Hf P Rb Ti Zr SiO2 Al2O3 TFe2O3 K2O MgO CaO Na2O Au Pt Pd LOI".split()
    table = _table({n: RNG.lognormal(1, 0.3, N) for n in names})
    table.insert(0, "Sample", [f"S{i}" for i in range(N)])
    s = _load(tmp_path, table)
    assert s.elements == [n if n != "TFe2O3" else "Fe2O3T" for n in names]
    assert s.units == {}  # no unit in the names: values as read, and the report says so
    assert "unit not given, values as read: Br, Cl" in s.report.text()


def test_ambiguous_bare_names_follow_one_rule(tmp_path):
    numbers = {n: RNG.lognormal(1, 0.3, N) for n in ["As", "In", "Be", "S", "B", "C", "W", "I", "Au", "Cu"]}
    table = _table(
        {
            **numbers,
            "in": RNG.lognormal(size=N),  # lower-case English words are never elements
            "as": RNG.lognormal(size=N),
            "No": np.arange(N),  # nobelium is never a bare element: a sample number
            "K": ["a", "b"] * (N // 2),  # text: a label, not potassium
        }
    )
    s = _load(tmp_path, table)
    assert s.elements == ["As", "In", "Be", "S", "B", "C", "W", "I", "Au", "Cu"]
    for name in ("in", "as", "No", "K"):
        assert name in s.report.ignored
    # beside columns that state their unit, a bare one-letter name is a label; a two-letter symbol is read
    table = _table({"Cu_ppm": numbers["Cu"], "Zn_ppm": numbers["Au"], "Pb_ppm": numbers["W"], "B": np.arange(N),
                    "S": np.arange(N), "As": numbers["As"]})  # fmt: skip
    s = _load(tmp_path, table)
    assert s.elements == ["Cu", "Zn", "Pb", "As"] and {"B", "S"} <= set(s.report.ignored)
    # a bare name needs at least 3 other element columns beside it
    with pytest.raises(DataError, match="no element columns found"):
        _load(tmp_path, _table({"Au": numbers["Au"], "Cu": numbers["Cu"], "As": numbers["As"]}))
    assert _load(tmp_path, _table({e: numbers[e] for e in ("Au", "Cu", "As", "W")})).elements == ["Au", "Cu", "As", "W"]


def test_one_column_per_element_the_better_filled(tmp_path):
    cr = RNG.lognormal(3, 0.3, N)
    xrf = cr.copy()
    xrf[:3] = -9999.0
    au_fa = RNG.lognormal(1, 0.3, N) * 1000  # ppb, complete
    au_icp = au_fa / 1000
    au_icp[:2] = np.nan  # ppm, two missing
    table = _table(
        {
            "Cr_ppm_xrf": xrf,
            "Cr_ppm_icp": cr,
            "Au_ppm_icp": au_icp,
            "Au_ppb_fa": au_fa,
            "Fe_ppm": np.full(N, 3e4),
            "Fe2O3T_pct": np.full(N, 4.3),  # a tie: the element is kept
            "Zn_ppm_icp": np.full(N, 50.0),
            "Zn_ppm_aas": ["<5"] + [50.0] * (N - 1),  # a tie on missing values: fewer below detection wins
        }
    )
    s = _load(tmp_path, table)
    assert s.elements == ["Cr", "Au", "Fe", "Zn"]
    np.testing.assert_allclose(s.table["Au"], au_fa / 1000)  # kept from the ppb column, in ppm
    assert s.dropped["Cr_ppm_xrf"] == "duplicate of Cr (more missing values; Cr_ppm_icp kept)"
    assert s.dropped["Au_ppm_icp"].startswith("duplicate of Au (more missing values; Au_ppb_fa kept")
    assert s.dropped["Fe2O3T"] == "duplicate of Fe (an oxide beside its element; Fe_ppm kept)"
    assert s.dropped["Zn_ppm_aas"] == "duplicate of Zn (more values below detection; Zn_ppm_icp kept)"


# ---------------------------------------------------------------------- sample filter


def test_where_keeps_the_chosen_rows_and_reports_them(tmp_path):
    table = _table({"Cu_ppm": np.arange(1.0, N + 1), "Zn_ppm": 2.0, "Pb_ppm": 3.0}, lonlat=True)
    table["sample_type"] = ["Stream Sediment"] * (N - 3) + ["Soil"] * 3
    table["sample depth"] = np.arange(N)
    s = _load(tmp_path, table, where="sample_type == 'Stream Sediment'")
    assert len(s.table) == N - 3 and s.rows.tolist() == list(range(N - 3)) and len(s.raw) == N - 3
    assert s.report.rows_read == N and s.report.where_dropped == 3
    assert "3 dropped by --where \"sample_type == 'Stream Sediment'\"" in s.report.text()
    s = _load(tmp_path, table, where="sample_type in ['Soil'] or `sample depth` < 2")
    assert s.rows.tolist() == [0, 1, 9, 10, 11]
    assert where_mask(table, "~(Cu_ppm >= 3) & (1 < Cu_ppm)").tolist() == [False, True] + [False] * (N - 2)


@pytest.mark.parametrize(
    "expr, message",
    [
        ("__import__('os').system('true')", "function call"),
        ("sample_type.str.len() > 3", "function call"),
        ("Cu_ppm == @limit", "'@'"),
        ("Cu_ppm == Zn_ppm", "two columns"),
        ("Cu_ppm + 1 > 3", "arithmetic"),
        ("sample_type.str", "an attribute"),
        ("nope == 1", "no column 'nope'"),
        ("sample_type == 'Till'", "keeps none of the 12 rows"),
        ("sample_type =", "is not a comparison"),
    ],
)
def test_where_refuses_anything_but_comparisons(tmp_path, expr, message):
    table = _table({"Cu_ppm": 1.0, "Zn_ppm": 2.0}, lonlat=True)
    table["sample_type"] = "Stream Sediment"
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("'", "'")):
        _load(tmp_path, table, where=expr)


# ---------------------------------------------------------------------- formats


def test_every_format_reads_the_same_samples(tmp_path):
    table = _table({"Au_ppb_icp": RNG.lognormal(size=N), "Cu_ppm": RNG.lognormal(size=N),
                    "SiO2_percent_xrf": RNG.uniform(50, 70, N)}, lonlat=True)  # fmt: skip
    table["sample_type"] = "Stream Sediment"
    frame = gpd.GeoDataFrame(table.drop(columns=["lon", "lat"]), geometry=gpd.points_from_xy(table.lon, table.lat),
                             crs="EPSG:4326")  # fmt: skip
    table.to_csv(tmp_path / "s.csv", index=False)
    table.to_parquet(tmp_path / "s.parquet")
    frame.to_file(tmp_path / "s.geojson")
    frame.to_file(tmp_path / "s.gpkg")
    frame.to_parquet(tmp_path / "geo.parquet")  # GeoParquet: geometry and its metadata
    wkb = pd.DataFrame(frame.drop(columns="geometry"))
    wkb["geometry"] = frame.geometry.to_wkb()
    wkb.to_parquet(tmp_path / "wkb.parquet")  # a WKB column without metadata: lon/lat range -> EPSG:4326
    reference = load_points(tmp_path / "s.csv")
    assert reference.elements == ["Au", "Cu", "SiO2"] and reference.crs.to_epsg() == 32638
    for name in ("s.parquet", "s.geojson", "s.gpkg", "geo.parquet", "wkb.parquet"):
        s = load_points(tmp_path / name)
        assert s.elements == reference.elements and s.crs == reference.crs, name
        np.testing.assert_allclose(s.table.geometry.x, reference.table.geometry.x, atol=1e-3)
        np.testing.assert_allclose(s.table[reference.elements], reference.table[reference.elements])
        assert s.report.format in ("Parquet", "GeoJSON", "GeoPackage")


def test_coordinates_named_coord_x_coord_y_in_lon_lat(tmp_path):
    table = _table({"Cu_ppm": 1.0, "Zn_ppm": 2.0}, lonlat=True).rename(columns={"lon": "coord_x", "lat": "coord_y"})
    s = _load(tmp_path, table, crs=None)
    assert s.source_crs.to_epsg() == 4326 and s.crs.to_epsg() == 32638
    assert "coord_x values all within longitude/latitude range" in s.report.text()


# ---------------------------------------------------------------------- sites


def test_commodity_matching_on_hand_rows():
    values = pd.Series(["Ag, Au, Cu, Pb, Zn", "Au?", "Gold", "Copper; Gold", "Cu", "gold (placer)", "AU",
                        "Gold in quartz veins", "Cu-Au", "Unknown", None, "Iron ore", "La, Ce", "In"])  # fmt: skip
    hit, unsure = commodity_match(values, "Au")
    assert hit.tolist() == [True, True, True, True, False, True, True, True, True, False, False, False, False, False]
    assert unsure.tolist() == [False, True] + [False] * 12
    assert commodity_match(values, "Gold")[0].tolist() == hit.tolist()  # names and symbols alike
    assert commodity_match(values, "Cu")[0].tolist()[:5] == [True, False, False, True, True]
    assert commodity_match(values, "Iron")[0].tolist()[11] and commodity_match(values, "REE")[0].tolist()[12]
    assert commodity_match(values, "In")[0].tolist() == [False] * 13 + [True]  # "in quartz" is not indium
    assert commodity_match(values, "Au,Cu")[0].sum() == hit.sum() + 1  # any of them: "Cu" alone added
    assert commodity_match(values, "unknown")[0].tolist()[9]  # any other word, whole
    types = pd.Series(["Mine", "Mines(?)", "Prospect", "Prospects", "Occurrence", "Mine?", None])
    assert value_match(types, "Mine,Prospect")[0].tolist() == [True, True, True, True, False, True, False]
    status = pd.Series(["Active", "Active?", "Inactive", "Probably inactive"])
    assert value_match(status, "Active")[0].tolist() == [True, True, False, False]


def test_commodity_columns_main_ones_by_default():
    columns = ["comm_main", "comm_other", "comments", "major_commodity", "minor_commodities", "trace_commodities",
               "SITE_COMMO", "TARGET_COM", "Other_comm", "site"]  # fmt: skip
    used, found = commodity_columns(columns)
    assert used == ["comm_main", "major_commodity", "SITE_COMMO", "TARGET_COM"]
    assert "comments" not in found and "comm_other" in found
    assert commodity_columns(columns, ["comm_main", "comm_other"])[0] == ["comm_main", "comm_other"]
    with pytest.raises(DataError, match="no column 'nope'"):
        commodity_columns(columns, ["nope"])


def _sites(tmp_path):
    table = pd.DataFrame(
        {
            "lon": [44.0, 44.1, 44.2, 44.3],
            "lat": [23.3, 23.4, 23.5, 23.6],
            "comm_main": ["Ag, Au, Cu", "Au?", "Cu", "Zn"],
            "comm_other": [None, None, "Au", None],
            "site_type": ["Mine", "Prospect", "Occurrence", "Mines"],
            "status": ["Active", "Inactive", "Active?", None],
        }
    )
    table.to_csv(tmp_path / "sites.csv", index=False)
    return tmp_path / "sites.csv"


def test_site_filters_and_their_report(tmp_path):
    path = _sites(tmp_path)
    assert len(io.load_deposits(path, commodity="Au")) == 2
    assert len(io.load_deposits(path, commodity="Au", commodity_columns=["comm_main", "comm_other"])) == 3
    sites = io.load_deposits(path, commodity="Au", site_type="Mine,Prospect", status="Active")
    assert len(sites) == 1 and sites.crs.to_epsg() == 4326
    report = sites.attrs["import_report"]
    assert [s["kept"] for s in report.selection] == [2, 2, 1]
    text = report.text()
    assert "selected by --commodity Au: 2 of 4 in comm_main, 1 of them uncertain ('?')" in text
    assert "1 dropped by --status Active" in text
    with pytest.raises(DataError, match=r"no site matches --commodity Mo in comm_main \(values there: "):
        io.load_deposits(path, commodity="Mo")


def test_a_lonlat_site_file_lands_on_the_same_cells_in_the_cli_and_the_dashboard(tmp_path, small_scenario):
    """The user's report: a lon/lat site file uploaded on a UTM grid fell nowhere in the dashboard."""
    from mstgat_core.cli.common import load_labelled_grid
    from mstgat_core.dashboard.state import Session

    grid = small_scenario.grid
    io.save_grid(grid, tmp_path / "grid.nc")
    cells = small_scenario.deposits.geometry
    lonlat = gpd.GeoSeries(cells, crs=grid.rio.crs).to_crs("EPSG:4326")
    table = pd.DataFrame({"lon": lonlat.x, "lat": lonlat.y, "commodity": ["Li"] * len(lonlat)})
    table.loc[len(table)] = [lonlat.x.iloc[0], lonlat.y.iloc[0], "Sn"]  # a site of another commodity
    table.to_csv(tmp_path / "sites.csv", index=False)
    gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table.lon, table.lat), crs="EPSG:4326").to_file(
        tmp_path / "sites.geojson"
    )
    table.rename(columns={"lon": "X", "lat": "Y"}).to_csv(tmp_path / "xy.csv", index=False)
    expected = io.deposit_cells(grid, small_scenario.deposits).values
    for name in ("sites.csv", "sites.geojson", "xy.csv"):
        args = Namespace(
            data=tmp_path / "grid.nc",
            deposits=tmp_path / name,
            crs=None,
            support="auto",
            elements=None,
            commodity="Li",
            commodity_columns=None,
            site_type=None,
            status=None,
        )
        _, cli_cells = load_labelled_grid(args)
        session = Session()
        try:
            session.set_data(grid, None, "small synthetic")
            session.data.site_commodity = "Li"
            session.load_deposits_upload({name: (tmp_path / name).read_bytes()})
            page_cells = session.data.deposit_mask
            assert session.data.site_report["selection"][0]["kept"] == len(lonlat)
            assert "on the grid:" in session.data.site_report["placement"]
            shown = session.data.reports_markdown()  # the page shows the same report next to the dropper
            assert shown.startswith(f"```\nimport of {name}") and "on the grid:" in shown
        finally:
            session.cleanup()
        np.testing.assert_array_equal(cli_cells.values, expected, err_msg=name)
        np.testing.assert_array_equal(page_cells.values, expected, err_msg=name)


# ---------------------------------------------------------------------- CLI


def test_score_a_parquet_survey_with_a_filter_keeps_the_rows_it_scores(tmp_path, capsys):
    n = 40
    table = pd.DataFrame({"latitude": np.linspace(55.0, 55.3, n), "longitude": np.linspace(-133.0, -132.6, n)})
    for e in ("Au_ppm", "As_ppm", "Cu_ppm", "Zn_ppm"):
        table[e] = RNG.lognormal(size=n)
    table["sample_type"] = ["Stream Sediment", "Soil"] * (n // 2)
    table.to_parquet(tmp_path / "s.parquet")
    out = tmp_path / "scores.csv"
    argv = ["score", str(tmp_path / "s.parquet"), "--out", str(out), "--where", "sample_type == 'Stream Sediment'",
            "--neighbours", "3", "--epochs", "1"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "import of s.parquet (Parquet, samples)" in err and "20 dropped by --where" in err
    scores = pd.read_csv(out)
    assert len(scores) == n // 2 and (scores["sample_type"] == "Stream Sediment").all()


def test_info_prints_the_import_report_and_sites(tmp_path, capsys):
    table = _table({"Au_ppb": 1.0, "Cu_ppm": 2.0}, lonlat=True)
    table.to_csv(tmp_path / "s.csv", index=False)
    assert main(["info", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("import of s.csv (CSV, samples)") and "elements (2): Au=Au_ppb (ppb)" in out
    assert main(["info", str(tmp_path / "s.csv"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["units"] == {"Au": "ppm", "Cu": "ppm"} and info["report"]["columns"][0]["factor"] == 0.001
    assert main(["info", str(_sites(tmp_path)), "--sites", "--commodity", "Cu"]) == 0
    assert "selected by --commodity Cu: 2 of 4 in comm_main" in capsys.readouterr().out


# ---------------------------------------------------------------------- real surveys


def test_saudi_gm46c_samples_and_occurrences(shared_data):
    folder = shared_data / "saudi-gm46c"
    samples = load_points(folder / "geochem.geojson", where="sample_type == 'Stream Sediment'")
    assert len(samples.table) == 1228 and samples.report.rows_read == 1243 and samples.report.where_dropped == 15
    assert len(samples.report.columns) == 57 and len(samples.elements) == 57  # no analyte measured twice
    assert samples.crs.to_epsg() == 32638 and samples.units["Au"] == "ppm" and samples.units["SiO2"] == "%"
    assert "Fe2O3T" in samples.elements and not samples.dropped and not samples.report.ignored
    assert {c["element"] for c in samples.report.columns if c["factor"] == 0.001} == {
        "Re", "Au", "Ir", "Os", "Pd", "Pt", "Rh", "Ru"
    }  # fmt: skip
    occurrences = folder / "mineral_occurrences.geojson"
    assert len(io.load_deposits(occurrences, commodity="Au")) == 16
    assert len(io.load_deposits(occurrences, commodity="Cu")) == 20
    both = io.load_deposits(occurrences, commodity="Au", commodity_columns=["major_commodity", "minor_commodities"])
    assert len(both) == 22


def test_alaska_parquet_samples_and_occurrences(shared_data):
    folder = shared_data / "alaska-se"
    samples = load_points(folder / "samples.parquet")
    assert len(samples.table) == 30112 and len(samples.elements) == 26  # at max_missing 0.5
    assert samples.crs.to_epsg() == 32608 and samples.report.format == "Parquet"
    assert samples.dropped["U"] == "81% missing" and "Hm_ppm" in samples.report.ignored
    occurrences = folder / "occurrences.parquet"
    gold = io.load_deposits(occurrences, commodity="Au")
    assert len(gold) == 386 and gold.attrs["import_report"].selection[0]["uncertain"] == 27
    assert len(io.load_deposits(occurrences, commodity="Cu")) == 370
    assert len(io.load_deposits(occurrences, commodity="Au", site_type="Mine,Prospect")) == 321


def test_coordinate_columns_of_a_vector_file_are_never_elements(tmp_path):
    names = ["Au", "Cu", "As", "Zn"]
    table = _table({n: RNG.lognormal(size=N) for n in names}, lonlat=True)
    frame = gpd.GeoDataFrame(table.rename(columns={"lon": "X", "lat": "Y"}),
                             geometry=gpd.points_from_xy(table.lon, table.lat), crs="EPSG:4326")  # fmt: skip
    frame.to_file(tmp_path / "s.gpkg")
    assert load_points(tmp_path / "s.gpkg").elements == names  # Y (a coordinate) is not yttrium here
