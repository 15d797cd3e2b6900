import pytest

from discovery.campaign_config import PRESETS, CampaignConfigError, load_toml, validate


def test_valid_config_is_normalised():
    config = validate({"name": " LiZnO ", "elements": "Zn, Li, O", "pipelines": "structural,compositional", "rounds": "4"})
    assert config.name == "LiZnO"
    assert config.elements == ["Li", "O", "Zn"]
    assert config.pipelines == ["structural", "compositional"]
    assert config.rounds == 4


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        ({"name": "x", "elements": []}, "elements", "empty"),
        ({"name": "x", "elements": ["Li", "Qq"]}, "elements", "Qq"),
        ({"name": "x", "elements": ["Li", "Li"]}, "elements", "two distinct"),
        # Mn's ground state (alpha-Mn, 58 atoms) is not built yet: refused at launch, naming the element
        ({"name": "x", "elements": ["Li", "Mn", "O"]}, "elements", "no elemental reference phase for Mn"),
        # MP treats Fe oxides with GGA+U; the GPAW protocol has none, so the chemistry is refused there (not on vasp)
        ({"name": "x", "elements": ["Li", "Fe", "O"], "dft_backend": "gpaw"}, "elements", "GGA+U"),
        ({"name": "", "elements": ["Li", "O"]}, "name", "needs a name"),
        ({"name": "x", "elements": ["Li", "O"], "rounds": 0}, "rounds", "out of range"),
        ({"name": "x", "elements": ["Li", "O"], "rounds": 2.5}, "rounds", "not an integer"),
        ({"name": "x", "elements": ["Li", "O"], "dft_per_round": 10_000}, "dft_per_round", "out of range"),
        ({"name": "x", "elements": ["Li", "O"], "kappa": "lots"}, "kappa", "not a number"),
        ({"name": "x", "elements": ["Li", "O"], "max_elements": 3}, "max_elements", "more than"),
        ({"name": "x", "elements": ["Li", "O"], "pipelines": ["magic"]}, "pipelines", "magic"),
        ({"name": "x", "elements": ["Li", "O"], "dft_backend": "castep"}, "dft_backend", "castep"),
        ({"name": "x", "elements": ["Li", "O"], "budget": 3}, "budget", "unknown setting"),
        ({"name": "x", "elements": 5}, "elements", "empty"),
        ({"name": "x" * 121, "elements": ["Li", "O"]}, "name", "120"),
        ({"name": "x", "elements": ["Li", "O"], "wall_clock_hours": 0}, "wall_clock_hours", "out of range"),
        ({"name": "x", "elements": ["Li", "O"], "ensemble_size": 11}, "ensemble_size", "out of range"),
        ({"name": "x", "elements": ["Li", "O"], "max_atoms": 500}, "max_atoms", "out of range"),
        ({"name": "x", "elements": ["Li", "O"], "dft_preset": "ultra"}, "dft_preset", "ultra"),
        ({"name": "x", "elements": ["Li", "O"], "seed": "abc"}, "seed", "not an integer"),
        ({"name": "x", "elements": ["Li", "O"], "pipelines": []}, "pipelines", "choose one or both"),
        ({"name": "x", "elements": ["Li", "O"], "kappa_final": -1}, "kappa_final", "out of range"),
        ({"name": "x", "elements": ["Li", "O"], "kappa_final": "less"}, "kappa_final", "not a number"),
        ({"name": "x", "elements": ["Li", "O"], "retraining": "warm"}, "retraining", "not one of fine-tune, scratch"),
    ],
)
def test_bad_input_names_the_field(raw, field, fragment):
    with pytest.raises(CampaignConfigError) as err:
        validate(raw)
    assert field in err.value.errors
    assert fragment in err.value.errors[field]


def test_all_errors_reported_at_once():
    with pytest.raises(CampaignConfigError) as err:
        validate({"name": "", "elements": ["Xx"], "rounds": -1})
    assert {"name", "elements", "rounds"} <= set(err.value.errors)


def test_presets_are_valid():
    for raw in PRESETS.values():
        validate(dict(raw))


def test_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[campaign]\nname = "t"\nelements = ["Na", "Cl"]\nrounds = 2\n')
    assert load_toml(path).rounds == 2
    path.write_text("[campaign\nname=")
    with pytest.raises(CampaignConfigError) as err:
        load_toml(path)
    assert str(path) in err.value.errors["config"]


def test_plugin_backends_are_accepted_only_when_registered():
    raw = {"name": "x", "elements": ["Li", "O"], "dft_backend": "slow-fake"}
    with pytest.raises(CampaignConfigError) as err:
        validate(raw)
    assert "gpaw" in err.value.errors["dft_backend"]  # the message lists what is known
    assert validate(raw, backends=["gpaw", "ml", "slow-fake"]).dft_backend == "slow-fake"


def test_missing_toml_file_is_a_clear_error(tmp_path):
    with pytest.raises(CampaignConfigError) as err:
        load_toml(tmp_path / "nope.toml")
    assert "file not found" in err.value.errors["config"]


def test_kappa_anneals_linearly_from_explore_to_exploit():
    config = validate({"name": "x", "elements": ["Li", "O"], "rounds": 5, "kappa": 2.0, "kappa_final": 0.0})
    assert [config.kappa_for_round(r) for r in range(5)] == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.0])
    assert config.kappa_for_round(9) == pytest.approx(0.0)  # an extra round keeps the final κ


def test_without_a_final_kappa_every_round_uses_kappa():
    for raw in ({}, {"kappa_final": None}):
        config = validate({"name": "x", "elements": ["Li", "O"], "rounds": 3, "kappa": 0.7, **raw})
        assert config.kappa_final is None
        assert {config.kappa_for_round(r) for r in range(3)} == {0.7}
