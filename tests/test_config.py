"""Configuration: presets load, overrides apply, and every mistake gets a message with a fix."""

import tomllib

import pytest

from vqstudio.config import Config, load_config, load_preset, parse_override, preset_names
from vqstudio.errors import ConfigError


def test_defaults_validate_and_round_trip_through_toml(tmp_path):
    config = Config()
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    again = load_config(path)
    assert again == config
    assert tomllib.loads(path.read_text())["model"]["encoder_ratios"] == [2, 4, 5, 6]


def test_weights_with_slashes_survive_toml(tmp_path):
    config = Config().with_overrides(["loss.weights.mel_l1/1024=2.5", "loss.mel_norm=tanh"])
    assert config.loss.resolved_weights()["mel_l1/1024"] == 2.5
    assert config.loss.mel_norm == "tanh"
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert load_config(path).loss.weights == {"mel_l1/1024": 2.5}


def test_parse_override_reads_toml_values():
    assert parse_override("train.lr=1e-4") == ("train.lr", 1e-4)
    assert parse_override("model.encoder_ratios=[2, 4]") == ("model.encoder_ratios", [2, 4])
    assert parse_override("loss.mel_norm=tanh") == ("loss.mel_norm", "tanh")
    assert parse_override("model.ema=false") == ("model.ema", False)


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.nope=1", "has no key 'nope'"),
        ("nosection.x=1", "does not name a setting"),
        ("train.lr=fast", "must be a number"),
        ("data.batch_size=2.5", "whole number"),
        ("loss.weights.mel_l1/1024=-1", "must be a finite number >= 0"),
        ("loss.weights.loudness=1", "unknown term 'loudness'"),
        ("model.hop=256", "does not match the encoder"),
        ("loss.mel_norm=cube", "is not one of log, tanh, minmax"),
        ("train.betas=[0.9]", "two numbers"),
    ],
)
def test_bad_overrides_name_the_problem_and_the_fix(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        Config().with_overrides([override])
    assert info.value.fix, "every configuration error carries a fix"


def test_unknown_key_in_a_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nencoder_ratio = [2, 4]\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) encoder_ratio"):
        load_config(path)
    path.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="no preset named 'huge'") as info:
        load_preset("huge")
    for name in preset_names():
        assert name in info.value.fix


def test_every_preset_loads():
    names = preset_names()
    for required in ("tiny-cpu", "seed-baseline", "speech-24k", "music-44k"):
        assert required in names
    for name in names:
        config = load_preset(name)
        assert config.preset == name
        assert all(w >= 0 for w in config.loss.resolved_weights().values())
