"""One path for settings: a command's shortcut flags are ``--set`` with a help text made from the
dataclass field, and what the help says is what the command does."""

import re

import click
import pytest

from neuroner_tl import api
from neuroner_tl.cli import SHORTCUT_PREFIX, cli
from neuroner_tl.config import Hyperparameters, command_line_options
from neuroner_tl.errors import NeuronerError
from neuroner_tl.transfer import update_hyperparameters, update_options

from conftest import invoke


def shortcut_options(command_name):
    command = cli.commands[command_name]
    return [p for p in command.params if isinstance(p, click.Option) and p.name.startswith(SHORTCUT_PREFIX)]


def stated_default(option):
    found = re.search(r"Default (.*?)(?= \(|;|\. \(--set)", option.help)
    assert found, option.help
    return found.group(1)


def shown(value):
    return str(value).lower() if isinstance(value, bool) else str(value)


def train_settings(options):
    return Hyperparameters.from_dict(options)


def update_settings(options, source):
    """What an update from ``source`` runs with, given ``options``: its settings and hyperparameters."""
    settings, changes = update_options(options)
    return {**update_hyperparameters(source, changes).to_dict(), **settings.to_dict()}


def test_every_train_flag_says_its_default_and_sets_what_set_sets():
    options = shortcut_options("train")
    assert {o.name for o in options} >= {SHORTCUT_PREFIX + n for n in ("max_epochs", "batch_size", "tag_scheme")}
    for option in options:
        name = option.name[len(SHORTCUT_PREFIX):]
        assert f"--set {name}=VALUE" in option.help
        assert stated_default(option) == shown(getattr(train_settings({}), name))
        value = "BIOES" if name == "tag_scheme" else 7
        assert getattr(train_settings(command_line_options(None, (), {name: value})), name) == value
        assert train_settings(command_line_options(None, (), {name: value})) == \
            train_settings(command_line_options(None, [f"{name}={value}"]))


def test_every_update_flag_says_the_default_an_update_really_uses(micro_model):
    """The micro model trained 1 epoch with patience 1: an update's budget is the package's, and the
    help says so (it used to say "the source's")."""
    source = api.load_tagger(micro_model)
    assert source.hp.max_epochs == 1 and source.hp.patience == 1
    effective = update_settings({}, source)
    options = shortcut_options("update")
    assert {o.name for o in options} >= {SHORTCUT_PREFIX + n for n in ("method", "init", "learning_rate", "max_epochs",
                                                                        "patience")}
    for option in options:
        name = option.name[len(SHORTCUT_PREFIX):]
        assert f"--set {name}=VALUE" in option.help
        assert stated_default(option) == shown(effective[name]), (name, option.help)
        value = {"method": "distill", "init": "preserve"}.get(name, 3)
        assert update_settings(command_line_options(None, (), {name: value}), source)[name] == value


def test_set_and_a_flag_for_one_setting_must_agree_and_the_command_line_beats_the_config_file():
    assert command_line_options({"max_epochs": 5}, ["max_epochs=7"]) == {"max_epochs": "7"}
    assert command_line_options(None, ["max_epochs=7"], {"max_epochs": 7}) == {"max_epochs": 7}
    with pytest.raises(NeuronerError, match="max_epochs is given twice"):
        command_line_options(None, ["max_epochs=7"], {"max_epochs": 8})
    code, output = invoke("train", "x.conll", "-o", "y", "--set", "max_epochs=7", "--epochs", "8")
    assert code == 2 and "max_epochs is given twice" in output


def test_api_options_and_keywords_are_one_mapping(micro_model, tmp_path):
    with pytest.raises(NeuronerError, match="max_epochs is given twice"):
        api.update(micro_model, tmp_path / "none.conll", ["X"], None, options={"max_epochs": 2}, max_epochs=3)


def test_l2sp_weight_is_the_methods_own_unless_given():
    from neuroner_tl.config import L2SP_DEFAULT, UpdateSettings

    assert UpdateSettings(method="l2-sp").l2sp_weight == L2SP_DEFAULT
    assert UpdateSettings(method="distill").l2sp_weight == 0.0
    assert UpdateSettings(method="distill", l2sp_weight=0.2).l2sp_weight == 0.2
    with pytest.raises(NeuronerError, match="l2sp_weight"):
        UpdateSettings(l2sp_weight=-1.0)  # no sentinel any more: a negative weight is out of range
