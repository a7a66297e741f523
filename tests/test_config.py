from __future__ import annotations

import pytest

from steve.config import ConfigError, load, parse_override


def test_defaults_come_from_the_yaml_files():
    cfg = load()
    assert cfg.env.name == "crafter" and cfg.env.max_steps == 10000 and cfg.run.flush_every == 500


def test_layers_apply_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("env: {max_steps: 300}\nrun: {episodes: 4, seed: 9}\n")
    cfg = load([f], ["run.seed=2"], {"run": {"episodes": 5}})
    assert (cfg.env.max_steps, cfg.run.episodes, cfg.run.seed) == (300, 5, 2)


def test_set_values_are_typed():
    assert parse_override("a.b=3") == {"a": {"b": 3}}
    assert parse_override("a=true") == {"a": True}
    assert parse_override("x.y=[64, 32]") == {"x": {"y": [64, 32]}}
    assert load(overrides=["env.minedojo.image_size=[32, 48]"]).env.minedojo.image_size == [32, 48]


@pytest.mark.parametrize("override, message", [
    ("run.epsiodes=3", "unknown key 'run.epsiodes'"),
    ("nothing.here=1", "unknown key 'nothing'"),
    ("run.episodes=many", "run.episodes: Input should be a valid integer"),
    ("run.episodes=0", "run.episodes: Input should be greater than or equal to 1"),
    ("env.crafter.size=[1]", "env.crafter.size"),
    ("oops", "expected KEY=VALUE"),
])
def test_bad_config_is_one_clear_line(override, message):
    with pytest.raises(ConfigError) as err:
        load(overrides=[override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_steve_side_by_side_is_refused_in_one_line_while_it_learns():
    assert load(overrides=["run.workers=2", "agent.name=student"]).run.workers == 2
    assert load(overrides=["run.workers=2", "agent.name=steve", "agent.learn=false"]).run.workers == 2
    with pytest.raises(ConfigError) as err:
        load(overrides=["run.workers=2", "agent.name=steve"])
    assert str(err.value).startswith("config: run.workers: the steve agent that learns plays one episode after")
    assert "\n" not in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load([tmp_path / "missing.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load([bad])
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load([bad])


def test_digest_ignores_bookkeeping_but_not_the_world():
    base = load().digest()
    assert load(overrides=["run.out=/elsewhere", "run.episodes=7", "run.workers=2"]).digest() == base
    assert load(overrides=["env.max_steps=5"]).digest() != base
