"""Expansion of opt_values into runs, config_info.txt and opt_stop parsing: pure functions, from tables."""

from pathlib import Path

import pytest
import yaml

from mlagents_learn import (
    SweepError, StopRule, expand, flow, parse_config, parse_stop_rules, render_config_info,
)

DATA = Path(__file__).parent / "data"


def sweep(text: str, run_id: str = "r", repetitions: int = 1, max_runs: int = 10_000):
    return expand(parse_config(text, "c.yaml"), run_id, repetitions, max_runs, "c.yaml")


def has_opt_key(node) -> bool:
    if isinstance(node, dict):
        return any(str(k).startswith("opt_") or has_opt_key(v) for k, v in node.items())
    if isinstance(node, list):
        return any(has_opt_key(item) for item in node)
    return False


def test_seed_3dball_example_gives_its_nine_runs_and_config_info():
    runs = sweep((DATA / "3dball.yaml").read_text(), "3DBall")
    assert [run.run_id for run in runs] == [f"3DBall-{i}" for i in range(9)]
    assert render_config_info(runs) == (DATA / "3dball_config_info.txt").read_text()
    hyper = runs[3].config["behaviors"]["3DBall"]["hyperparameters"]
    assert (hyper["beta"], hyper["epsilon"]) == (0.002, 0.1)
    # Every other value and every section is kept, in order, with the sweep's own keys removed.
    source = yaml.safe_load((DATA / "3dball.yaml").read_text())["behaviors"]["3DBall"]
    del source["opt_stop"]
    source["hyperparameters"].update(beta=0.002, epsilon=0.1)
    assert runs[3].config == {"behaviors": {"3DBall": source}}
    assert list(runs[3].config["behaviors"]["3DBall"]["hyperparameters"]) == list(source["hyperparameters"])
    assert runs[0].stop_rules == [StopRule("3DBall", "Environment/Cumulative Reward", 100000, 50, None)]


GOALIE_STRIKER = """
default_settings:
  trainer_type: poca
  hyperparameters:
    learning_rate: 0.0003
    beta:
      opt_values: [0.001, 0.002, 0.003]
    epsilon:
      opt_values: [0.1, 0.2, 0.3]
behaviors:
  Goalie:
    hyperparameters:
      batch_size: 2048
  Striker:
    max_steps: 1000
"""


def test_default_settings_options_apply_to_each_behavior_individually():
    runs = sweep(GOALIE_STRIKER)
    assert len(runs) == 81
    assert render_config_info(runs[:2]) == (
        "r-0\n- Goalie\n  - beta: 0.001\n  - epsilon: 0.1\n- Striker\n  - beta: 0.001\n  - epsilon: 0.1\n\n"
        "r-1\n- Goalie\n  - beta: 0.001\n  - epsilon: 0.1\n- Striker\n  - beta: 0.001\n  - epsilon: 0.2\n")
    last = runs[80].config
    assert last["default_settings"] == {"trainer_type": "poca", "hyperparameters": {"learning_rate": 0.0003}}
    # Each behavior gets default_settings' hyperparameters merged with its own, as mlagents-learn merges them.
    assert last["behaviors"] == {
        "Goalie": {"hyperparameters": {"learning_rate": 0.0003, "beta": 0.003, "epsilon": 0.3, "batch_size": 2048}},
        "Striker": {"max_steps": 1000, "hyperparameters": {"learning_rate": 0.0003, "beta": 0.003, "epsilon": 0.3}},
    }
    combos = {tuple(value for _, _, value in run.values) for run in runs}
    assert len(combos) == 81


def test_a_behaviors_own_value_wins_over_default_settings():
    runs = sweep(GOALIE_STRIKER.replace("batch_size: 2048", "batch_size: 2048\n      beta: 0.005"))
    assert len(runs) == 3 * 9
    assert all(run.config["behaviors"]["Goalie"]["hyperparameters"]["beta"] == 0.005 for run in runs)
    assert [label for heading, label, _ in runs[0].values if heading == "Goalie"] == ["epsilon"]


def test_options_outside_behaviors_come_after_the_behaviors_under_their_section():
    text = """
engine_settings:
  time_scale: {opt_values: [10, 20]}
behaviors:
  Walker:
    hyperparameters:
      learning_rate: {opt_values: [0.001, 0.0001]}
environment_parameters:
  gravity: {opt_values: [9.8, 1.6]}
"""
    runs = sweep(text)
    assert len(runs) == 8
    assert runs[1].values == [("Walker", "learning_rate", 0.001), ("engine_settings", "time_scale", 10),
                              ("environment_parameters", "gravity", 1.6)]
    assert render_config_info(runs[1:2]) == (
        "r-1\n- Walker\n  - learning_rate: 0.001\n- engine_settings\n  - time_scale: 10\n"
        "- environment_parameters\n  - gravity: 1.6\n")
    assert runs[7].config == {"engine_settings": {"time_scale": 20},
                              "behaviors": {"Walker": {"hyperparameters": {"learning_rate": 0.0001}}},
                              "environment_parameters": {"gravity": 1.6}}


@pytest.mark.parametrize("values, shown", [
    ("[0.001, 1.0e-05]", ["0.001", "1.0e-05"]),
    ("[simple, nature_cnn]", ["simple", "nature_cnn"]),
    ("[true, false]", ["true", "false"]),
    ("[null, 3]", ["null", "3"]),
    ("[[64, 64], [128]]", ["[64, 64]", "[128]"]),
    ("[{strength: 1.0, gamma: 0.99}, {gamma: 0.9}]", ["{strength: 1.0, gamma: 0.99}", "{gamma: 0.9}"]),
    ("['a: b', '']", ["'a: b'", "''"]),
])
def test_values_of_any_yaml_type(values, shown):
    runs = sweep(f"behaviors:\n  B:\n    x:\n      opt_values: {values}\n")
    expected = yaml.safe_load(values)
    assert [run.config["behaviors"]["B"]["x"] for run in runs] == expected
    assert [line.split(": ", 1)[1] for line in render_config_info(runs).splitlines() if line.startswith("  - x")] == shown
    assert [yaml.safe_load(text) for text in shown] == expected


def test_a_key_that_is_not_unique_within_its_heading_is_written_as_its_dotted_path():
    text = """
behaviors:
  B:
    reward_signals:
      extrinsic:
        gamma: {opt_values: [0.99]}
      curiosity:
        gamma: {opt_values: [0.9]}
        strength: {opt_values: [0.02]}
"""
    assert render_config_info(sweep(text)) == (
        "r-0\n- B\n  - reward_signals.extrinsic.gamma: 0.99\n  - reward_signals.curiosity.gamma: 0.9\n"
        "  - strength: 0.02\n")


def test_a_default_settings_option_inside_a_list_gives_each_behavior_the_whole_list():
    runs = sweep("behaviors:\n  A: {}\n  B: {layers: [9]}\ndefault_settings:\n  layers: [{opt_values: [1, 2]}, 5]\n  keep: 3\n")
    assert len(runs) == 2  # B's own list replaces the default one, option and all
    assert runs[1].config == {"behaviors": {"A": {"layers": [2, 5]}, "B": {"layers": [9]}}, "default_settings": {"keep": 3}}


def test_options_inside_lists_such_as_curriculum_lessons():
    text = """
behaviors:
  B: {max_steps: 10}
environment_parameters:
  wall:
    curriculum:
      - name: low
        value: {opt_values: [1.0, 2.0]}
      - name: high
        value: 4.0
"""
    runs = sweep(text)
    assert [run.config["environment_parameters"]["wall"]["curriculum"][0]["value"] for run in runs] == [1.0, 2.0]
    assert runs[0].values == [("environment_parameters", "value", 1.0)]


def test_a_whole_section_or_behavior_may_be_one_option():
    text = """
behaviors:
  A: {opt_values: [{max_steps: 1}, {max_steps: 2}]}
  B: {max_steps: 9}
engine_settings:
  opt_values: [{time_scale: 1}, {time_scale: 20, no_graphics: true}]
"""
    runs = sweep(text)
    assert [run.config for run in runs[2:]] == [
        {"behaviors": {"A": {"max_steps": 2}, "B": {"max_steps": 9}}, "engine_settings": {"time_scale": 1}},
        {"behaviors": {"A": {"max_steps": 2}, "B": {"max_steps": 9}},
         "engine_settings": {"time_scale": 20, "no_graphics": True}}]
    assert render_config_info(runs[3:]) == (
        "r-3\n- A\n  - A: {max_steps: 2}\n- engine_settings\n  - engine_settings: {time_scale: 20, no_graphics: true}\n")


def test_a_config_without_options_is_one_run():
    runs = sweep("behaviors:\n  A: {max_steps: 5}\n  B: {max_steps: 6}\n", "solo")
    assert [run.run_id for run in runs] == ["solo-0"]
    assert render_config_info(runs) == "solo-0\n- A\n  - no value options\n- B\n  - no value options\n"


def test_repetitions_run_in_laps_and_config_info_says_which():
    runs = sweep("behaviors:\n  B:\n    x: {opt_values: [1, 2]}\n", repetitions=2)
    assert [(run.run_id, run.repetition, run.values[0][2]) for run in runs] == [
        ("r-0", 1, 1), ("r-1", 1, 2), ("r-2", 2, 1), ("r-3", 2, 2)]
    assert render_config_info(runs, 2).split("\n\n")[2] == "r-2\n- repetition 2 of 2\n- B\n  - x: 1"


def test_instances_per_run_follow_env_settings_num_envs_even_as_an_option():
    runs = sweep("behaviors:\n  B: {}\nenv_settings:\n  num_envs: {opt_values: [1, 3]}\n")
    assert [run.instances for run in runs] == [1, 3]


def test_no_run_config_keeps_an_opt_key():
    runs = sweep(GOALIE_STRIKER.replace("max_steps: 1000", "max_steps: 1000\n    opt_stop: {tag: t, min: 0}"))
    assert not any(has_opt_key(run.config) for run in runs)


@pytest.mark.parametrize("text, message", [
    ("behaviors:\n  B:\n    x: {opt_values: []}\n",
     "opt_values is empty (c.yaml: behaviors.B.x.opt_values): list at least one value"),
    ("behaviors:\n  B:\n    x: {opt_values: 3}\n",
     "opt_values is not a list (c.yaml: behaviors.B.x.opt_values): write the options as a list, e.g. opt_values: [0.1, 0.2], "
     "or as labels and values, e.g. opt_values: {fast: 3.0e-3, slow: 1.0e-5}"),
    ("behaviors:\n  B:\n    x: {opt_values: [1], y: 2}\n",
     "opt_values has other keys beside it: y (c.yaml: behaviors.B.x.opt_values): "
     "put opt_values alone in its mapping, e.g. beta: {opt_values: [0.001, 0.002]}"),
    ("behaviors:\n  B:\n    x: {opt_values: [{opt_values: [1]}]}\n",
     "opt_values inside opt_values (c.yaml: behaviors.B.x.opt_values): options cannot be nested; list plain values"),
    ("behaviors:\n  B:\n    x: {opt_value: [1]}\n",
     "unknown key opt_value (c.yaml: behaviors.B.x.opt_value): use opt_values, opt_range or opt_stop"),
    ("behaviors:\n  B:\n    hyperparameters: {opt_stop: {tag: t, min: 1}}\n",
     "opt_stop is not directly under a behavior or default_settings (c.yaml: behaviors.B.hyperparameters.opt_stop): "
     "move it under behaviors.<Behavior> or default_settings"),
    ("default_settings: {}\n", "the config has no behaviors (c.yaml): add a behaviors: section naming at least one behavior"),
    ("behaviors: {}\n", "the config has no behaviors (c.yaml): add a behaviors: section naming at least one behavior"),
    ("- a\n- b\n", "the config is not a YAML mapping (c.yaml): start from an ML-Agents config with a behaviors: section"),
    ("behaviors:\n  B: 3\n", "behavior 'B' is not a mapping (c.yaml): give each behavior its settings as a mapping"),
    ("behaviors:\n  B:\n    x: [1, 2\n", "YAML syntax error: did not find expected ',' or ']' (c.yaml, line 4): fix the YAML"),
    ("behaviors:\n  B:\n   x: 1\n  y: 2\n y: 3\n", "YAML syntax error: did not find expected key (c.yaml, line 5): fix the YAML"),
])
def test_malformed_configs_are_refused_with_a_clear_message(text, message):
    with pytest.raises(SweepError) as caught:
        sweep(text)
    assert str(caught.value) == message


def test_a_grid_larger_than_max_runs_is_refused_before_it_is_built():
    text = "behaviors:\n  B:\n" + "".join(f"    k{i}: {{opt_values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}\n" for i in range(12))
    with pytest.raises(SweepError) as caught:
        sweep(text)
    assert str(caught.value) == ("the sweep has 1000000000000 runs, more than --max-runs 10000 (c.yaml): "
                                 "remove options, or pass --max-runs 1000000000000 if you mean it")


STOP = "behaviors:\n  A: {}\n  B: {}\ndefault_settings:\n  opt_stop: %s\n"


@pytest.mark.parametrize("spec, rules", [
    ("{tag: R, min: 0}", [StopRule("A", "R", 0, 0, None), StopRule("B", "R", 0, 0, None)]),
    ("[{tag: R, step: 100, max: 5.5}, {tag: L, rule: median, step: 10, mode: min, min_runs: 2}]",
     [StopRule("A", "R", 100, None, 5.5), StopRule("A", "L", 10, None, None, "median", 2, "min"),
      StopRule("B", "R", 100, None, 5.5), StopRule("B", "L", 10, None, None, "median", 2, "min")]),
])
def test_stop_rules_of_default_settings_belong_to_each_behavior(spec, rules):
    assert parse_stop_rules(parse_config(STOP % spec)) == rules


def test_a_behaviors_own_opt_stop_replaces_default_settings():
    text = "behaviors:\n  A: {opt_stop: {tag: X, max: 1}}\n  B: {}\ndefault_settings:\n  opt_stop: {tag: R, min: 0}\n"
    assert parse_stop_rules(parse_config(text)) == [StopRule("A", "X", 0, None, 1), StopRule("B", "R", 0, 0, None)]


@pytest.mark.parametrize("spec, message", [
    ("{step: 5, min: 0}", "opt_stop has no tag"),
    ("{tag: R, min: 2, max: 1}", "opt_stop min 2 is above max 1"),
    ("{tag: R, min: 0, when: 3}", "unknown opt_stop field when"),
    ("{tag: R, rule: mean}", "unknown opt_stop rule 'mean'"),
    ("{tag: R, min: low}", "opt_stop min is not a number: 'low'"),
    ("{tag: R, step: true, min: 1}", "opt_stop step is not a number: True"),
    ("{tag: R}", "opt_stop has neither min nor max"),
    ("{tag: R, rule: median, min: 3}", "opt_stop field min does not belong to rule: median"),
    ("{tag: R, rule: median, mode: up}", "opt_stop mode 'up' is neither max nor min"),
    ("{tag: R, rule: median, min_runs: 0}", "opt_stop min_runs is not a whole number of at least 1: 0"),
    ("{tag: R, min: 1, mode: max}", "opt_stop field mode does not belong to rule: threshold"),
    ("[]", "opt_stop is an empty list"),
    ("3", "opt_stop is not a mapping"),
])
def test_malformed_stop_conditions_are_refused(spec, message):
    with pytest.raises(SweepError) as caught:
        parse_stop_rules(parse_config(STOP % spec, "c.yaml"), "c.yaml")
    assert caught.value.what == message
    assert caught.value.where == "c.yaml: default_settings.opt_stop"


def test_flow_writes_one_line_yaml():
    assert [flow(v) for v in (0.001, "x y", True, None, [1, "a"], {"a": [1]})] == [
        "0.001", "x y", "true", "null", "[1, a]", "{a: [1]}"]


def test_numbers_in_exponent_form_are_numbers_as_in_yaml_1_2():
    # YAML 1.1 (PyYAML) reads 3e-4 as a string; ML-Agents users write it all the time.
    config = parse_config("behaviors:\n  B:\n    lr: {opt_values: [3e-4, 1E+2]}\n    name: 1e\n"
                          "    opt_stop: {tag: R, min: -1e9}\n")
    runs = expand(config, "r")
    assert [run.config["behaviors"]["B"]["lr"] for run in runs] == [0.0003, 100.0]
    assert runs[0].config["behaviors"]["B"]["name"] == "1e"
    assert runs[0].stop_rules[0].min == -1e9
    assert render_config_info(runs[:1]) == "r-0\n- B\n  - lr: 0.0003\n"


def test_labelled_values_show_their_label_and_the_run_config_gets_the_value():
    text = ("behaviors:\n  B:\n    trainer_type: ppo\n    hyperparameters:\n"
            "      opt_values:\n        small: {batch_size: 64, buffer_size: 2048, learning_rate: 3.0e-4, beta: 5.0e-3}\n"
            "        large: {batch_size: 1024, buffer_size: 20480, learning_rate: 3.0e-4, beta: 5.0e-3}\n"
            "    gamma: {opt_values: [0.99, 0.995]}\n"
            "    network_settings: {opt_values: [{hidden_units: 128, num_layers: 2, normalize: true, vis_encode_type: simple}]}\n")
    runs = sweep(text)
    assert [run.describe() for run in runs] == [
        "hyperparameters=small gamma=0.99 network_settings={hidden_units: 128, num_layers: 2, norma...",
        "hyperparameters=small gamma=0.995 network_settings={hidden_units: 128, num_layers: 2, norma...",
        "hyperparameters=large gamma=0.99 network_settings={hidden_units: 128, num_layers: 2, norma...",
        "hyperparameters=large gamma=0.995 network_settings={hidden_units: 128, num_layers: 2, norma...",
    ]
    assert runs[2].config["behaviors"]["B"]["hyperparameters"] == {
        "batch_size": 1024, "buffer_size": 20480, "learning_rate": 3.0e-4, "beta": 5.0e-3}
    assert not has_opt_key(runs[2].config)
    # Machines read whole values: a labelled one after its label.
    assert runs[2].describe(whole=True).startswith("hyperparameters=large = {batch_size: 1024, buffer_size: 20480,")
    # config_info.txt: a labelled value's label and value, the whole value otherwise.
    assert render_config_info(runs).split("\n\n")[2] == (
        "r-2\n- B\n  - hyperparameters: large = {batch_size: 1024, buffer_size: 20480, learning_rate: 0.0003, beta: 0.005}\n"
        "  - gamma: 0.99\n"
        "  - network_settings: {hidden_units: 128, num_layers: 2, normalize: true, vis_encode_type: simple}")


def test_a_behavior_or_section_whose_key_is_a_number_takes_its_options_where_they_stand():
    # YAML reads `1:` as a number; the option's value goes under that very key (it was KeyError: '1').
    runs = sweep("behaviors:\n  1:\n    x: {opt_values: [1, 2]}\n7:\n  y: {opt_values: [a, b]}\n")
    assert [run.config for run in runs] == [{"behaviors": {1: {"x": x}}, 7: {"y": y}} for x in (1, 2) for y in ("a", "b")]
    assert render_config_info(runs[:1]) == "r-0\n- 1\n  - x: 1\n- 7\n  - y: a\n"
