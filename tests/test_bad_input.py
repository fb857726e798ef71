"""Bad input, all at once: each gets one exact line on stderr, exit 2, and nothing written or started."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings, strategies as st

from helpers import STAND_IN
from mlagents_learn import SweepError, expand, main, parse_config

SCRIPT = Path(__file__).resolve().parent.parent / "mlagents-learn.py"
TRAINER = shlex.join([sys.executable, STAND_IN])
GOOD = "behaviors:\n  B:\n    max_steps: 10\n"
PBT = "behaviors:\n  B:\n    max_steps: 1000\n    opt_stop: {tag: R, rule: pbt, interval: 100%s}\n"
RANGED = "behaviors:\n  B:\n    x: {opt_range: [1.0e-5, 1.0e-2], log: true}\n"
NOT_A_LIST = ("write the options as a list, e.g. opt_values: [0.1, 0.2], or as labels and values, "
              "e.g. opt_values: {fast: 3.0e-3, slow: 1.0e-5}")
HELP = "(command line): see python mlagents-learn.py --help"
SECONDS = "(command line): e.g. {flag} 60"
# Nine anchors of nine aliases each: 627 bytes that a walk would see as 387 million values.
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\ni: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
NODES, DEPTH = 200000, 50

# (command line after the config path, config text, the message after "error: ")
CASES = [
    # command lines
    (None, GOOD, "no config file given (command line): usage: python mlagents-learn.py config.yaml [flags]"),
    (["b.yaml"], GOOD, f"unrecognized arguments: b.yaml {HELP}"),
    (["--num-envs", "0"], GOOD, "--num-envs must be at least 1, not 0 (command line): pass --num-envs 1 or more"),
    (["--num-envs", "-2"], GOOD, "--num-envs must be at least 1, not -2 (command line): pass --num-envs 1 or more"),
    (["--num-envs", "two"], GOOD, f"argument --num-envs: invalid int value: 'two' {HELP}"),
    (["--num-envs=1.5"], GOOD, f"argument --num-envs: invalid int value: '1.5' {HELP}"),
    (["--num-repetitions", "0"], GOOD, "--num-repetitions must be at least 1, not 0 (command line): pass --num-repetitions 1 or more"),
    (["--num-repetitions", "x"], GOOD, f"argument --num-repetitions: invalid int value: 'x' {HELP}"),
    (["--max-runs", "0"], GOOD, "--max-runs must be at least 1, not 0 (command line): pass --max-runs 1 or more"),
    (["--stop-timeout", "-1"], GOOD, "--stop-timeout must be a positive number of seconds, not -1 " + SECONDS.format(flag="--stop-timeout")),
    (["--stop-timeout", "nan"], GOOD, "--stop-timeout must be a positive number of seconds, not nan " + SECONDS.format(flag="--stop-timeout")),
    (["--poll-interval", "0"], GOOD, "--poll-interval must be a positive number of seconds, not 0 " + SECONDS.format(flag="--poll-interval")),
    (["--poll-interval", "inf"], GOOD, "--poll-interval must be a positive number of seconds, not inf " + SECONDS.format(flag="--poll-interval")),
    (["--poll-interval", "soon"], GOOD, f"argument --poll-interval: invalid float value: 'soon' {HELP}"),
    (["--base-port", "0"], GOOD, "--base-port must be at least 1, not 0 (command line): pass --base-port 1 or more"),
    (["--base-port", "70000"], GOOD, "--base-port 70000 is not a port (command line): pick a port below 65536"),
    (["--base-port", "abc"], GOOD, f"argument --base-port: invalid int value: 'abc' {HELP}"),
    (["--tensorboard-url", "ftp://x"], GOOD, "--tensorboard-url 'ftp://x' is not an http URL (command line): e.g. --tensorboard-url http://localhost:6006"),
    (["--tensorboard-url", "localhost:6006"], GOOD, "--tensorboard-url 'localhost:6006' is not an http URL (command line): e.g. --tensorboard-url http://localhost:6006"),
    (["--num-envs", "2"], GOOD, "--num-envs 2 without --env: the Unity Editor trains one run at a time on its fixed port "
                                "(command line): pass --env=<your build> to train runs at once, or --num-envs 1"),
    (["--bogus-flag"], GOOD, f"unrecognized arguments: --bogus-flag {HELP}"),
    (["--num-env", "2"], GOOD, f"unrecognized arguments: --num-env 2 {HELP}"),  # no abbreviations: they would hide typos
    (["--env"], GOOD, f"argument --env: expected one argument {HELP}"),
    (["--seed"], GOOD, f"argument --seed: expected one argument {HELP}"),
    (["--run-id", "../up"], GOOD, "run id '../up' is not a plain name (--run-id): use letters, digits, '-', '_' or '.', without '..' or path separators"),
    (["--run-id", "a/b"], GOOD, "run id 'a/b' is not a plain name (--run-id): use letters, digits, '-', '_' or '.', without '..' or path separators"),
    (["--run-id", "a\\b"], GOOD, "run id 'a\\\\b' is not a plain name (--run-id): use letters, digits, '-', '_' or '.', without '..' or path separators"),
    (["--run-id", ""], GOOD, "run id '' is not a plain name (--run-id): use letters, digits, '-', '_' or '.', without '..' or path separators"),
    (["--run-id", "x" * 249], GOOD, "run id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... is 249 characters long: file names made "
     "from it, such as xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..., would be longer than the 255 bytes a file name may have "
     "(--run-id): use a run id of at most 248 characters"),
    (["--run-id", "x" * 248], GOOD, None),
    (["--run-id", "x" * 248], "behaviors:\n  B:\n    x: {opt_values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}\n",
     "run id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... is 248 characters long: file names made from it, such as "
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..., would be longer than the 255 bytes a file name may have (--run-id): "
     "use a run id of at most 247 characters"),
    (["--trainer", "no-such-trainer-here"], GOOD, "trainer not found: no-such-trainer-here (--trainer): install ML-Agents "
     "(python scripts/install_mlagents.py), activate its environment, or pass --trainer PATH"),
    (["--trainer", " "], GOOD, "--trainer is empty (command line): pass the trainer's command, e.g. --trainer mlagents-learn"),
    # Ray cluster flags (refused before Ray is imported or any cluster is asked)
    (["--cpus-per-run", "2"], GOOD, "--cpus-per-run without --ray: runs on this machine take what they need (command line): "
     "pass --ray ADDRESS to train on a Ray cluster, or drop the flag"),
    (["--gpus-per-run", "0.5"], GOOD, "--gpus-per-run without --ray: runs on this machine take what they need (command line): "
     "pass --ray ADDRESS to train on a Ray cluster, or drop the flag"),
    (["--ray", "auto", "--cpus-per-run", "0"], GOOD, "--cpus-per-run must be a positive number, not 0 (command line): e.g. --cpus-per-run 1"),
    (["--ray", "auto", "--gpus-per-run", "-1"], GOOD, "--gpus-per-run must be a non-negative number, not -1 (command line): e.g. --gpus-per-run 1"),
    (["--ray", "auto", "--gpus-per-run", "1.5"], GOOD, "--gpus-per-run 1.5: Ray takes fractions only below 1 (command line): e.g. --gpus-per-run 2"),
    (["--ray", "auto", "--cpus-per-run", "inf"], GOOD, "--cpus-per-run must be a positive number, not inf (command line): e.g. --cpus-per-run 1"),
    (["--ray", "auto", "--max-retries", "-1"], GOOD, "--max-retries must be 0 or more, not -1 (command line): e.g. --max-retries 2"),
    (["--ray", " "], GOOD, "--ray is empty (command line): pass the cluster's address: auto, HOST:PORT or ray://HOST:10001"),
    (["--ray"], GOOD, f"argument --ray: expected one argument {HELP}"),
    # configs
    ([], "behaviors:\n  B: {}\ncheckpoint_settings: {run_id: ../x}\n", "run id '../x' is not a plain name (c.yaml: "
     "checkpoint_settings.run_id): use letters, digits, '-', '_' or '.', without '..' or path separators"),
    ([], "", "the config is empty (c.yaml): start from an ML-Agents config with a behaviors: section"),
    ([], "- a\n- b\n", "the config is not a YAML mapping (c.yaml): start from an ML-Agents config with a behaviors: section"),
    ([], "behaviors:\n  B: {x: [1\n", "YAML syntax error: did not find expected ',' or ']' (c.yaml, line 3): fix the YAML"),
    ([], "behaviors:\n\tB: {}\n", "YAML syntax error: found character that cannot start any token (c.yaml, line 2): fix the YAML"),
    ([], "a: &x 1\nb: *y\n", "YAML syntax error: found undefined alias (c.yaml, line 2): fix the YAML"),
    ([], "behaviors: !!python/object:os.system {}\n", "YAML syntax error: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object:os.system' (c.yaml, line 1): fix the YAML"),
    ([], "default_settings: {}\n", "the config has no behaviors (c.yaml): add a behaviors: section naming at least one behavior"),
    ([], "behaviors: {}\n", "the config has no behaviors (c.yaml): add a behaviors: section naming at least one behavior"),
    ([], "behaviors: [B]\n", "the config has no behaviors (c.yaml): add a behaviors: section naming at least one behavior"),
    ([], "behaviors:\n  B: {}\ndefault_settings:\n  opt_values: [{trainer_type: ppo}, {trainer_type: sac}]\n",
     "default_settings as a whole cannot be an option (c.yaml: default_settings.opt_values): "
     "put opt_values on the keys inside it, e.g. trainer_type: {opt_values: [ppo, sac]}"),
    ([], "behaviors:\n  opt_values: [{B: {}}]\n", "behaviors as a whole cannot be an option (c.yaml: behaviors.opt_values): "
     "put opt_values on a behavior or on the keys inside it"),
    ([], "behaviors:\n  B: {opt_values: [{max_steps: 1}, 3]}\n", "behavior 'B' is an option whose values are not all mappings "
     "(c.yaml: behaviors.B.opt_values): list the behavior's settings as a mapping per option"),
    ([], "behaviors:\n  B: {opt_values: [{max_steps: 1}]}\ndefault_settings:\n  lr: {opt_values: [1, 2]}\n",
     "behavior 'B' is an option as a whole, so default_settings' options cannot apply to it (c.yaml: behaviors.B.opt_values): "
     "put the options on keys inside the behavior, or inside its option values"),
    ([], "behaviors:\n  B: 3\n", "behavior 'B' is not a mapping (c.yaml): give each behavior its settings as a mapping"),
    ([], "behaviors:\n  B: {}\ndefault_settings: 3\n", "default_settings is not a mapping (c.yaml): give default_settings as a mapping"),
    ([], "behaviors:\n  B:\n    x: {opt_values: []}\n", "opt_values is empty (c.yaml: behaviors.B.x.opt_values): list at least one value"),
    ([], "behaviors:\n  B:\n    x: {opt_values: 0.1}\n", "opt_values is not a list (c.yaml: behaviors.B.x.opt_values): "
     + NOT_A_LIST),
    ([], "behaviors:\n  B:\n    x: {opt_values: {}}\n", "opt_values is empty (c.yaml: behaviors.B.x.opt_values): list at least one value"),
    ([], "behaviors:\n  B:\n    x: {opt_values: {1: a, '1': b}}\n", "opt_values labels must be distinct one-line names "
     "(c.yaml: behaviors.B.x.opt_values): e.g. opt_values: {ppo: {trainer_type: ppo}, sac: {trainer_type: sac}}"),
    ([], "behaviors:\n  B:\n    x: {opt_values: {' ': 1}}\n", "opt_values labels must be distinct one-line names "
     "(c.yaml: behaviors.B.x.opt_values): e.g. opt_values: {ppo: {trainer_type: ppo}, sac: {trainer_type: sac}}"),
    ([], "behaviors:\n  B:\n    x: {opt_values: {a: {opt_values: [1]}}}\n", "opt_values inside opt_values "
     "(c.yaml: behaviors.B.x.opt_values): options cannot be nested; list plain values"),
    ([], "behaviors:\n  B:\n    x: {opt_values: null}\n", "opt_values is not a list (c.yaml: behaviors.B.x.opt_values): "
     + NOT_A_LIST),
    ([], "behaviors:\n  B: {}\ndefault_settings:\n  x: {opt_values: [1], max: 2}\n", "opt_values has other keys beside it: max "
     "(c.yaml: default_settings.x.opt_values): put opt_values alone in its mapping, e.g. beta: {opt_values: [0.001, 0.002]}"),
    ([], "behaviors:\n  B:\n    x: {opt_values: [[{opt_values: [1]}]]}\n", "opt_values inside opt_values "
     "(c.yaml: behaviors.B.x.opt_values): options cannot be nested; list plain values"),
    ([], "behaviors:\n  B:\n    x: {opt_valeus: [1]}\n", "unknown key opt_valeus (c.yaml: behaviors.B.x.opt_valeus): use opt_values, opt_range or opt_stop"),
    ([], "behaviors:\n  B: {}\nopt_stop: {tag: t, min: 0}\n", "opt_stop is not directly under a behavior or default_settings "
     "(c.yaml: opt_stop): move it under behaviors.<Behavior> or default_settings"),
    ([], "behaviors:\n  B:\n    opt_stop: {step: 5, min: 0}\n", "opt_stop has no tag (c.yaml: behaviors.B.opt_stop): "
     "name the TensorBoard scalar, e.g. tag: Environment/Cumulative Reward"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: 5, min: 0}\n", "opt_stop tag is not a name: 5 (c.yaml: behaviors.B.opt_stop): "
     "quote it, e.g. tag: 'Environment/Cumulative Reward'"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, min: 2, max: 1}\n", "opt_stop min 2 is above max 1 (c.yaml: behaviors.B.opt_stop): swap them, or drop one"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, minimum: 2}\n", "unknown opt_stop field minimum (c.yaml: behaviors.B.opt_stop): "
     "use only factor, interval, max, min, min_runs, mode, perturb, quantile, resample, rule, step, tag"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, rule: best}\n", "unknown opt_stop rule 'best' (c.yaml: behaviors.B.opt_stop): "
     "use rule: median, rule: halving, rule: pbt, or leave rule out for min/max"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, min: '0.5'}\n", "opt_stop min is not a number: '0.5' (c.yaml: behaviors.B.opt_stop): write min as a number"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, step: 1k, min: 0}\n", "opt_stop step is not a number: '1k' (c.yaml: behaviors.B.opt_stop): write step as a number"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, max: .nan}\n", "opt_stop max is not a number: nan (c.yaml: behaviors.B.opt_stop): write max as a number"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, rule: median, min_runs: 2.5}\n", "opt_stop min_runs is not a whole number of at least 1: 2.5 "
     "(c.yaml: behaviors.B.opt_stop): e.g. min_runs: 3"),
    ([], "behaviors:\n  B: {}\nenv_settings: {num_envs: two}\n", "env_settings.num_envs is not a whole number from 1 to 1024: two (c.yaml: env_settings.num_envs): e.g. num_envs: 1"),
    ([], "behaviors:\n  B:\n" + "".join(f"    k{i}: {{opt_values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}\n" for i in range(5)),
     "the sweep has 100000 runs, more than --max-runs 10000 (c.yaml): remove options, or pass --max-runs 100000 if you mean it"),
    # YAML that never finishes, or crashes the parser: refused before anything walks it
    ([], "behaviors:\n  B: {}\n" + BOMB, f"the config has more than {NODES} values once its aliases are expanded (c.yaml): "
     "an ML-Agents config has a few hundred: check the file and its anchors (&) and aliases (*)"),
    ([], "behaviors:\n  B: {}\nx: " + "[" * 900 + "]" * 900 + "\n", f"the config nests deeper than {DEPTH} levels (c.yaml): "
     "an ML-Agents config is a few levels deep: check that this is the right file"),
    ([], "behaviors:\n  B: {}\nx: " + "[" * 30000 + "]" * 30000 + "\n", f"the config nests deeper than {DEPTH} levels (c.yaml): "
     "an ML-Agents config is a few levels deep: check that this is the right file"),
    ([], "behaviors:\n  B: {}\nx: &loop [1, *loop]\n", "the alias *loop refers to a mapping or list that contains it (c.yaml): "
     "a config cannot contain itself: replace the alias by a copy of the part you mean"),
    ([], "behaviors:\n  B: {}\nx: &loop {a: {b: *loop}}\n", "the alias *loop refers to a mapping or list that contains it (c.yaml): "
     "a config cannot contain itself: replace the alias by a copy of the part you mean"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, rule: halving}\n", "rule: halving needs the step of its first rung "
     "(c.yaml: behaviors.B.opt_stop): e.g. step: 50000"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, rule: halving, step: 100, factor: 1}\n", "opt_stop factor 1 is not above 1 "
     "(c.yaml: behaviors.B.opt_stop): e.g. factor: 3 (keep the best third)"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, rule: halving, step: 100, min: 0}\n", "opt_stop field min does not belong "
     "to rule: halving (c.yaml: behaviors.B.opt_stop): rule: halving takes tag, step and factor, mode"),
    ([], "behaviors:\n  A:\n    opt_stop: {tag: R, rule: halving, step: 100}\n  B:\n    opt_stop: {tag: R, rule: halving, "
     "step: 200}\n", "the halving rules of the behaviors differ in step, factor or mode (c.yaml): give every behavior's "
     "rule: halving the same step, factor and mode"),
    (["--no-tensorboard"], "behaviors:\n  B:\n    opt_stop: {tag: R, rule: halving, step: 100}\n", "rule: halving decides "
     "from TensorBoard, and --no-tensorboard leaves it out (command line): drop --no-tensorboard, or the halving rule"),
    # population based training (rule: pbt)
    ([], PBT % ", step: 100", "rule: pbt has no step: it is judged every interval (c.yaml: behaviors.B.opt_stop): "
     "e.g. interval: 50000, and drop step"),
    ([], PBT.replace("interval: 100", "interval: 0") % "", "opt_stop interval 0 is not above 0 (c.yaml: behaviors.B.opt_stop): "
     "e.g. interval: 50000 (steps)"),
    ([], PBT % ", quantile: 0.75", "opt_stop quantile 0.75 is not above 0 and at most 0.5 (c.yaml: behaviors.B.opt_stop): "
     "e.g. quantile: 0.25 (the worst quarter takes over the best quarter's checkpoints)"),
    ([], PBT % ", resample: 2", "opt_stop resample 2 is not a chance from 0 to 1 (c.yaml: behaviors.B.opt_stop): e.g. resample: 0.25"),
    ([], PBT % ", perturb: []", "opt_stop perturb is not a list of factors above 0: [] (c.yaml: behaviors.B.opt_stop): "
     "e.g. perturb: [0.8, 1.2]"),
    ([], PBT % ", perturb: [0.8, x]", "opt_stop perturb is not a list of factors above 0: [0.8, 'x'] (c.yaml: "
     "behaviors.B.opt_stop): e.g. perturb: [0.8, 1.2]"),
    ([], PBT % ", interval: 1k", "opt_stop interval is not a number: '1k' (c.yaml: behaviors.B.opt_stop): write interval as a number"),
    ([], "behaviors:\n  A:\n    opt_stop: {tag: R, rule: pbt}\n  B:\n    opt_stop: {tag: R, rule: halving, step: 100}\n",
     "opt_stop asks for both rule: halving and rule: pbt, and a run follows one schedule (c.yaml): keep one of them"),
    ([], "behaviors:\n  A:\n    opt_stop: {tag: R, rule: pbt}\n  B:\n    opt_stop: {tag: R, rule: pbt, interval: 10}\n",
     "the pbt rules of the behaviors differ in interval, quantile, perturb, resample or mode (c.yaml): give every "
     "behavior's rule: pbt the same settings"),
    (["--no-tensorboard"], PBT % "", "rule: pbt decides from TensorBoard, and --no-tensorboard leaves it out (command line): "
     "drop --no-tensorboard, or the pbt rule"),
    (["--confirm", "1"], PBT % "", "--confirm trains the best combinations again, and rule: pbt's result is a model trained "
     "under a schedule of values, not a combination (command line): drop --confirm (see the README's population based "
     "training section)"),
    ([], PBT.replace("max_steps: 1000", "max_steps: 1000\n    network_settings: {hidden_units: {opt_values: [32, 64]}}") % "",
     "hidden_units changes network_settings.hidden_units, which a checkpoint fixes (the network's shape or kind): rule: pbt "
     "cannot explore it from a checkpoint (c.yaml): give hidden_units one value, or sweep it with a grid or rule: halving instead"),
    # a control: what ML-Agents reads at every launch may be explored
    ([], PBT.replace("max_steps: 1000", "max_steps: 1000\n    hyperparameters: {learning_rate: {opt_values: [0.001, 0.003]}}")
     % "", None),
    (["--shuffle", "x"], GOOD, "--shuffle 'x' is not a seed (command line): give a whole number, e.g. --shuffle 7"),
    (["--shuffle", "-3"], GOOD, "--shuffle '-3' is not a seed (command line): give a whole number, e.g. --shuffle 7"),
    # values the sweep itself uses
    ([], "behaviors:\n  B: {}\nenv_settings: {base_port: abc}\n", "env_settings.base_port is not a port: abc "
     "(c.yaml: env_settings.base_port): write a whole number from 1 to 65535, e.g. base_port: 5005"),
    ([], "behaviors:\n  B: {}\nenv_settings: {base_port: [5005]}\n", "env_settings.base_port is not a port: [5005] "
     "(c.yaml: env_settings.base_port): write a whole number from 1 to 65535, e.g. base_port: 5005"),
    ([], "behaviors:\n  B: {}\nenv_settings: {base_port: -5}\n", "env_settings.base_port is not a port: -5 "
     "(c.yaml: env_settings.base_port): write a whole number from 1 to 65535, e.g. base_port: 5005"),
    ([], "behaviors:\n  B: {}\nenv_settings: {base_port: 70000}\n", "env_settings.base_port is not a port: 70000 "
     "(c.yaml: env_settings.base_port): write a whole number from 1 to 65535, e.g. base_port: 5005"),
    ([], "behaviors:\n  B: {}\nenv_settings: {base_port: {opt_values: [5005, 6005]}}\n", "env_settings.base_port cannot be "
     "an option: the sweep sets it for every run (c.yaml: env_settings.base_port.opt_values): give one value, or pass --base-port"),
    ([], "behaviors:\n  B: {}\nenv_settings: 3\n", "env_settings is not a mapping (c.yaml: env_settings): give env_settings as a mapping"),
    ([], "behaviors:\n  B: {}\nenv_settings: {env_path: [a]}\n", "env_settings.env_path is not a path: [a] "
     "(c.yaml: env_settings.env_path): write the path of the Unity build, e.g. env_path: Builds/3DBall"),
    ([], "behaviors:\n  B: {}\nenv_settings: {num_envs: 2000}\n", "env_settings.num_envs is not a whole number from 1 to 1024: "
     "2000 (c.yaml: env_settings.num_envs): e.g. num_envs: 1"),
    ([], "behaviors:\n  B: {}\ncheckpoint_settings: {results_dir: [a]}\n", "checkpoint_settings.results_dir is not a folder "
     "name: [a] (c.yaml: checkpoint_settings.results_dir): write it as a path, e.g. results_dir: results"),
    ([], "behaviors:\n  B: {}\ncheckpoint_settings: {run_id: {opt_values: [a, b]}}\n", "checkpoint_settings.run_id cannot be "
     "an option: the sweep sets it for every run (c.yaml: checkpoint_settings.run_id.opt_values): give one value, or pass --run-id"),
    ([], "behaviors:\n  B: {}\ncheckpoint_settings: {resume: 'yes'}\n", "checkpoint_settings.resume is not true or false: "
     "'yes' (c.yaml: checkpoint_settings.resume): write resume: true, or pass --resume"),
    ([], "behaviors:\n  B:\n    max_steps: " + "9" * 400 + "\n", "max_steps is not a number of steps: " + "9" * 40 +
     "... (c.yaml: behaviors.B.max_steps): write a whole number from 1 to 1e+15, e.g. max_steps: 500000"),
    ([], "behaviors:\n  B:\n    max_steps: {opt_values: [1000, lots]}\n", "max_steps is not a number of steps: lots "
     "(c.yaml: behaviors.B.max_steps): write a whole number from 1 to 1e+15, e.g. max_steps: 500000"),
    ([], "behaviors:\n  B:\n    summary_freq: 0\n", "summary_freq is not a number of steps: 0 "
     "(c.yaml: behaviors.B.summary_freq): write a whole number from 1 to 1e+15, e.g. summary_freq: 50000"),
    ([], "behaviors:\n  B:\n    opt_stop: {tag: R, min: " + "9" * 400 + "}\n", "opt_stop min is not a number: " + "9" * 40 +
     "... (c.yaml: behaviors.B.opt_stop): write min as a number"),
    ([], "behaviors:\n  B: {opt_values: 5}\n", "opt_values is not a list (c.yaml: behaviors.B.opt_values): "
     + NOT_A_LIST),
    (["--trainer", '"'], GOOD, "--trainer '\"' cannot be split into words (No closing quotation) (--trainer): "
     'quote it as a shell would, e.g. --trainer "/path with spaces/mlagents-learn"'),
    (["--tensorboard-url", "http://[::1"], GOOD, "--tensorboard-url 'http://[::1' is not a URL (Invalid IPv6 URL) "
     "(command line): e.g. --tensorboard-url http://localhost:6006"),
    (["--tensorboard-url", "http://localhost:70000"], GOOD, "--tensorboard-url 'http://localhost:70000' is not a URL "
     "(Port out of range 0-65535) (command line): e.g. --tensorboard-url http://localhost:6006"),
    (["--env=Fake", "--base-port", "65534", "--num-envs", "4"], "behaviors:\n  B:\n    x: {opt_values: [1, 2, 3, 4, 5, 6]}\n",
     "--base-port 65534 leaves no room below 65536 for 4 runs at once, a port each (command line): pass --base-port "
     "65532 or lower, or a smaller --num-envs"),
    (["--env=Fake", "--base-port", "65532", "--num-envs", "4"], "behaviors:\n  B:\n    x: {opt_values: [1, 2, 3, 4, 5, 6]}\n", None),
    (["--env=Fake", "--base-port", "65535", "--num-envs", "4"], GOOD, None),  # one run: one lane
    (["--metric-mode", "low"], GOOD, f"argument --metric-mode: invalid choice: 'low' (choose from 'max', 'min') {HELP}"),
    (["--max-runs", "3"], "behaviors:\n  B:\n    x: {opt_values: [1, 2]}\n", None),  # 2 runs: fine, and a dry run below
    (["--num-repetitions", "2", "--max-runs", "3"], "behaviors:\n  B:\n    x: {opt_values: [1, 2]}\n",
     "the sweep has 4 runs, more than --max-runs 3 (c.yaml): remove options, or pass --max-runs 4 if you mean it"),
    # A search that samples.
    ([], RANGED, "x is a range, and a grid takes lists only (c.yaml): pass --search random or --search tpe (with "
     "--num-trials N) to sample it, or give opt_values"),
    (["--search", "random"], RANGED, "--search random needs a budget (command line): pass --num-trials N, e.g. --num-trials 20"),
    (["--search", "random", "--num-trials", "0"], RANGED, "--num-trials must be at least 1, not 0 (command line): e.g. "
     "--num-trials 20"),
    (["--num-trials", "5"], GOOD, "--num-trials is for a sampled search, and this one is a grid (command line): add "
     "--search random or --search tpe, or drop the flag"),
    (["--search-seed", "5"], GOOD, "--search-seed is for a sampled search, and this one is a grid (command line): add "
     "--search random or --search tpe, or drop the flag"),
    (["--search", "random", "--num-trials", "5", "--search-seed", "x"], RANGED, "--search-seed 'x' is not a seed "
     "(command line): give a whole number, e.g. --search-seed 7"),
    (["--search", "random", "--num-trials", "5", "--num-repetitions", "2"], RANGED, "--num-repetitions with --search "
     "random: a search trains each trial once (command line): spend the runs on more trials (--num-trials), or drop "
     "--num-repetitions"),
    (["--search", "random", "--num-trials", "5", "--shuffle", "3"], RANGED, "--shuffle with --search random: trials are "
     "drawn in the order they train (command line): drop --shuffle (--search-seed picks the draws)"),
    (["--search", "random", "--num-trials", "3"], "behaviors:\n  B:\n    x: {opt_values: [1, 2]}\n",
     "--num-trials 3 is more than the 2 combinations of the lists (command line): pass --num-trials 2 or fewer, "
     "--search grid to train them all, or give a range (opt_range)"),
    (["--search", "random", "--num-trials", "2"], "behaviors:\n  B:\n    x: {opt_values: [1, 2]}\n", None),
    (["--search", "random", "--num-trials", "3"], "behaviors:\n  B:\n    max_steps: 10\n",
     "--search random has nothing to search: the config has no opt_values or opt_range (c.yaml): mark a value, e.g. "
     "learning_rate: {opt_range: [1.0e-5, 1.0e-2], log: true}"),
    (["--search", "random", "--num-trials", "3", "--no-tensorboard"], RANGED, "--search random learns from the trials' "
     "scores in TensorBoard, and --no-tensorboard leaves it out (command line): drop --no-tensorboard"),
    (["--search", "anneal", "--num-trials", "3"], RANGED,
     f"argument --search: invalid choice: 'anneal' (choose from 'grid', 'random', 'tpe') {HELP}"),
    (["--search", "random", "--num-trials", "3"], "behaviors:\n  B:\n    x: {opt_range: [0.1, 0.3], step: 0.15}\n",
     "opt_range's step 0.15 does not fit from 0.1 to 0.3 (c.yaml: behaviors.B.x.opt_range): give a step that divides "
     "high - low, e.g. opt_range: [32, 512], step: 32"),
    (["--search", "tpe", "--num-trials", "3"], RANGED, None),
    # Seeds, confirmation, GPUs.
    (["--seed", "x"], GOOD, "--seed 'x' is not a seed (command line): give a whole number, e.g. --seed 7"),
    (["--seed", "2147483648"], GOOD, "--seed '2147483648' is not a seed (command line): give a whole number, e.g. --seed 7"),
    ([], "env_settings:\n  seed: abc\nbehaviors:\n  B:\n    max_steps: 10\n", "env_settings.seed is 'abc', not a seed "
     "(c.yaml): give a whole number, e.g. seed: 7, or -1 to let the sweep draw one"),
    ([], "env_settings:\n  seed: -1\nbehaviors:\n  B:\n    max_steps: 10\n", None),
    (["--num-repetitions", "2"], "env_settings:\n  seed: {opt_values: [1, 2]}\nbehaviors:\n  B:\n    max_steps: 10\n",
     "env_settings.seed is an option, and --num-repetitions 2 would train each seed again (c.yaml): drop one: "
     "repetitions get seeds of their own (--seed N)"),
    (["--confirm", "2"], "env_settings:\n  seed: {opt_values: [1, 2]}\nbehaviors:\n  B:\n    max_steps: 10\n",
     "env_settings.seed is an option, and --confirm trains on seeds of its own (c.yaml): give env_settings.seed one value "
     "(or --seed N), or drop --confirm"),
    (["--confirm", "-1"], GOOD, "--confirm must be at least 1, not -1 (command line): pass --confirm 1 or more"),
    (["--confirm", "2", "--confirm-seeds", "0"], GOOD,
     "--confirm-seeds must be at least 1, not 0 (command line): pass --confirm-seeds 1 or more"),
    (["--confirm-seeds", "4"], GOOD, "--confirm-seeds without --confirm (command line): pass --confirm K as well (how many "
     "of the best combinations to confirm), or drop --confirm-seeds"),
    (["--confirm", "2", "--no-tensorboard"], GOOD, "--confirm picks the best combinations by their scores in TensorBoard, "
     "and --no-tensorboard leaves it out (command line): drop --no-tensorboard"),
    (["--confirm", "2", "--confirm-seeds", "5"], GOOD, None),
    (["--gpus", "0,x"], GOOD, "--gpus '0,x': 'x' is not a GPU (command line): list GPU numbers, e.g. --gpus 0,1, or --gpus all"),
    (["--gpus", "1,1"], GOOD, "--gpus '1,1' names a GPU twice (command line): list each GPU once; --runs-per-gpu K trains "
     "K runs on each"),
    (["--runs-per-gpu", "2"], GOOD, "--runs-per-gpu without --gpus (command line): pass --gpus 0,1 (or all) as well, or "
     "drop --runs-per-gpu"),
    (["--gpus", "0", "--runs-per-gpu", "0"], GOOD, "--runs-per-gpu must be at least 1, not 0 (command line): pass "
     "--runs-per-gpu 1 or more"),
    (["--gpus", "0,1", "--num-envs", "3", "--env=Game"], GOOD, "--num-envs 3 is more runs at once than 2 GPUs x "
     "--runs-per-gpu 1 hold (command line): pass --runs-per-gpu 2, or --num-envs 2 or fewer"),
    (["--gpus", "0,1", "--torch-device", "cpu"], GOOD, "--gpus gives each run its GPU as --torch-device cuda, and "
     "--torch-device cpu says otherwise (command line): drop --torch-device"),
    (["--gpus", "0", "--ray", "auto"], GOOD, "--gpus places runs on this machine's GPUs, and --ray trains on a cluster "
     "(command line): pass --gpus-per-run G for the cluster, or drop --ray"),
    (["--gpus", "0,1"], GOOD, "--num-envs 2 without --env: the Unity Editor trains one run at a time on its fixed port "
     "(command line): pass --env=<your build> to train runs at once, or --num-envs 1"),
    (["--gpus", "0,1", "--runs-per-gpu", "2", "--num-envs", "3", "--env=Game"], GOOD, None),
    (["--gpus", "GPU-8f2a61c0-0d3c-4a1e-9f51-2b7d0c1e2f3a", "--env=Game"], GOOD, None),
]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in folder.rglob("*")}


@pytest.mark.parametrize("args, text, message", CASES)
def test_bad_input_gets_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, args, text, message):
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text(text)
    argv = [] if args is None else ["c.yaml", *args]
    if "--trainer" not in argv:
        argv += ["--trainer", TRAINER]
    if message is None:  # a control case: the same command line is fine
        assert main(argv + ["--dry-run"]) == 0
        return
    before = tree(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert tree(tmp_path) == before


def test_a_run_id_too_long_for_a_file_name_is_one_line_where_the_results_folder_exists(tmp_path, monkeypatch, capsys):
    # Path.exists() raises "File name too long" once the folder above exists: it was a traceback.
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text(GOOD)
    Path("results").mkdir()
    assert main(["c.yaml", "--trainer", TRAINER, "--run-id", "y" * 254]) == 2
    assert capsys.readouterr().err.startswith("error: run id 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy... is 254 characters long")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "results"] and not any(Path("results").iterdir())


def test_there_are_at_least_40_bad_inputs():
    assert len([case for case in CASES if case[2] is not None]) >= 40


@pytest.mark.parametrize("name, setup, message", [
    ("missing.yaml", None, "config file not found (missing.yaml): check the path of the config"),
    ("folder.yaml", "dir", "the config path is a folder (folder.yaml): pass the config file itself"),
    ("utf16.yaml", "behaviors:\n  B: {}\n".encode("utf-16"), "the config is UTF-16 text, which mlagents-learn cannot read "
     "(utf16.yaml): save it as UTF-8 (in Notepad: Save As, Encoding UTF-8)"),
    ("utf16be.yaml", "behaviors:\n  B: {}\n".encode("utf-16-be"), "the config is UTF-16 text, which mlagents-learn cannot "
     "read (utf16be.yaml): save it as UTF-8 (in Notepad: Save As, Encoding UTF-8)"),
    ("utf32.yaml", "behaviors:\n  B: {}\n".encode("utf-32"), "the config is UTF-32 text, which mlagents-learn cannot read "
     "(utf32.yaml): save it as UTF-8 (in Notepad: Save As, Encoding UTF-8)"),
    ("latin1.yaml", "behaviors:\n  Bé: {}\n".encode("latin-1"), "the config is not UTF-8 text (byte 0xe9 at offset 14) "
     "(latin1.yaml): save it as UTF-8"),
    ("/dev/zero", None, "the config is a device, not a file (/dev/zero): pass the config file itself"),
    ("fifo.yaml", "fifo", "the config is a pipe, not a file (fifo.yaml): pass the config file itself"),  # it waited for good
    ("big.yaml", b"# a comment\n" * 100_000, "the config is larger than 1024 KiB (big.yaml): an ML-Agents config is a few KiB: "
     "check that this is the right file"),
])
def test_config_files_that_cannot_be_read(tmp_path, monkeypatch, capsys, name, setup, message):
    monkeypatch.chdir(tmp_path)
    if setup == "dir":
        Path(name).mkdir()
    elif setup == "fifo":
        os.mkfifo(name)
    elif setup is not None:
        Path(name).write_bytes(setup)
    before = tree(tmp_path)
    # A process, not main() itself: a config that blocks the sweep must fail the test, not hang it.
    done = subprocess.run([sys.executable, str(SCRIPT), name, "--trainer", TRAINER], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (2, f"error: {message}\n")
    assert tree(tmp_path) == before


# -- any config at all: expansion succeeds with the right count, or says why in our own words --

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, width=32),
                    st.text("abc: -_", max_size=4))
# Mostly ordinary keys, so that many configs are valid and get expanded; now and then a stray opt_* key.
keys = st.sampled_from(["lr", "beta", "hidden", "gamma", "tag", "min", "max", "lambd", "epsilon", "units", "layers",
                        "strength", "curiosity", "extrinsic", "time_horizon", "summary_freq", "opt_stop", "opt_x"])
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3),
    st.lists(inner, min_size=1, max_size=3).map(lambda options: {"opt_values": options})), max_leaves=8)
option_of = lambda strategy: st.lists(strategy, min_size=1, max_size=2).map(lambda options: {"opt_values": options})
settings_map = st.dictionaries(keys, values, max_size=4)
behavior = st.one_of(settings_map, option_of(settings_map))
configs = st.fixed_dictionaries(
    {"behaviors": st.one_of(st.dictionaries(st.sampled_from(["A", "B"]), behavior, min_size=1, max_size=2), values)},
    optional={"default_settings": st.one_of(settings_map, option_of(settings_map), values), "environment_parameters": values,
              "engine_settings": values})


def options_in(node, path=()):
    """(path, number of values) of every opt_values below node, written apart from the script on purpose."""
    if isinstance(node, dict) and "opt_values" in node:
        return [(path, len(node["opt_values"]))]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    return [found for key, value in items if key != "opt_stop" for found in options_in(value, path + (key,))]


def shadowed(behavior, path) -> bool:
    """Whether a behavior's own settings replace default_settings' value at path."""
    node = behavior
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
        if not isinstance(node, dict) or "opt_values" in node:
            return True
    return True


def expected_runs(config: dict) -> int:
    count = 1
    defaults = options_in(config.get("default_settings") or {})
    for behavior in config["behaviors"].values():
        for _, n in options_in(behavior) + [(p, n) for p, n in defaults if not shadowed(behavior, p)]:
            count *= n
    for section, body in config.items():
        if section not in ("behaviors", "default_settings"):
            for _, n in options_in(body):
                count *= n
    return count


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_expansion_succeeds_with_the_right_count_or_raises_our_own_error(config):
    text = yaml.safe_dump(config, sort_keys=False)
    try:
        parsed = parse_config(text, "c.yaml")
        runs = expand(parsed, "r", 1, 10_000, "c.yaml")
    except SweepError as error:
        assert str(error) and "\n" not in str(error)
        return
    event(f"expanded into {'one run' if len(runs) == 1 else 'several runs'}")
    assert len(runs) == expected_runs(parsed)
    for run in runs:
        dumped = yaml.safe_dump(run.config)
        assert "opt_values" not in dumped and "opt_stop" not in dumped
        assert yaml.safe_load(dumped) == run.config


def test_ray_flag_without_ray_installed_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    Path("c.yaml").write_text(GOOD)
    before = tree(tmp_path)
    assert main(["c.yaml", "--trainer", TRAINER, "--ray", "auto"]) == 2
    assert capsys.readouterr().err == ("error: --ray needs Ray, which is not installed here (command line): pip install ray "
                                       "into the Python that runs this script, the same version as the cluster's\n")
    assert tree(tmp_path) == before


def test_a_local_sweep_never_imports_ray(tmp_path):
    (tmp_path / "c.yaml").write_text("behaviors:\n  B:\n    max_steps: 10\n    lr: {opt_values: [1, 2]}\n")
    probe = ("import runpy, sys\nscript, sys.argv = sys.argv[1], [sys.argv[1], 'c.yaml', '--trainer', sys.argv[2], '--no-tensorboard']\n"
             "try:\n    runpy.run_path(script, run_name='__main__')\n"
             "except SystemExit as end:\n    print('exit', end.code, 'ray' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(SCRIPT), TRAINER], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "exit 0 False", done.stdout + done.stderr


def test_the_sweep_knows_which_of_its_own_flags_take_a_value_so_their_values_are_never_forwarded():
    import mlagents_learn as ml

    parser = ml.build_parser()
    assert {"--num-envs", "--poll-interval", "--trainer", "--ray"} <= parser.valued
    assert not {"--no-tensorboard", "--dry-run", "--shuffle"} & parser.valued
    argv = ["c.yaml", "--num-envs", "2", "--seed", "3", "--metric", "Score", "--poll-interval=5", "--debug",
            "--env-args", "--seed", "9"]
    # --seed is the sweep's: each run's seed is written in its config, derived from it.
    assert "--seed" in parser.valued
    assert ml.forwarded_flags(argv, parser) == ["--debug"]


def test_a_ray_without_the_switch_that_stops_it_reconnecting_is_said_once(monkeypatch):
    import types

    import mlagents_learn as ml

    fake = types.ModuleType("ray")
    fake.__version__ = "9.9"
    private = types.ModuleType("ray._private")
    private.auto_init_hook = types.ModuleType("ray._private.auto_init_hook")  # renamed away
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray._private", private)
    monkeypatch.setitem(sys.modules, "ray._private.auto_init_hook", private.auto_init_hook)
    ray, warning = ml.import_ray()
    assert ray is fake
    assert warning == ("Ray 9.9 has no ray._private.auto_init_hook.enable_auto_connect: should the cluster's head go "
                       "away, Ray may connect again by itself, or wait for a cluster for good")
    private.auto_init_hook.enable_auto_connect = True
    assert ml.import_ray()[1] is None and private.auto_init_hook.enable_auto_connect is False


# -- configs ML-Agents would refuse ---------------------------------------------------------------

CROSSED = ("behaviors:\n  B:\n    trainer_type: {opt_values: [ppo, sac]}\n    hyperparameters:\n"
           "      learning_rate: {opt_values: [0.001, 0.0003]}\n      buffer_init_steps: 100\n"
           "    max_steps: 100\n")


@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_configs_ml_agents_would_refuse_are_refused_before_anything_starts(tmp_path, monkeypatch, capsys, extra):
    # buffer_init_steps is SAC's: the two PPO runs failed after 3 s, the reason only in their logs, exit 1.
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text(CROSSED.replace("learning_rate:", "learning_rat:", 1) if extra else CROSSED)
    trainer = shlex.join([sys.executable, "-m", "mlagents.trainers.learn"])  # ML-Agents' own parser, in its Python
    assert main(["c.yaml", "--trainer", trainer, "--no-tensorboard", *extra]) == 2
    if extra:  # a misspelt hyperparameter: every run, one line per kind of mistake
        said = ("  ppo-0, ppo-1: The option learning_rat was specified in your YAML file for PPOSettings, but is invalid.\n"
                "  ppo-2, ppo-3: The option learning_rat was specified in your YAML file for SACSettings, but is invalid.")
        count = 4
    else:
        said = "  ppo-0, ppo-1: The option buffer_init_steps was specified in your YAML file for PPOSettings, but is invalid."
        count = 2
    assert capsys.readouterr().err == (
        f"error: ML-Agents refuses the configs of {count} of 4 runs (c.yaml): fix the options that make them, or leave "
        f"those runs out; what ML-Agents said:\n{said}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_trainer_python_without_ml_agents_is_said_once_and_the_sweep_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    python = Path(sys.base_prefix) / "bin" / "python3"  # the Python this virtualenv was made from: no ML-Agents
    Path("c.yaml").write_text(CROSSED)
    assert main(["c.yaml", "--trainer", f"{python} -m mlagents.trainers.learn", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert [line.split("] ", 1)[1] for line in err.splitlines()] == [
        f"warning: the trainer's Python {python} has no ML-Agents: the run configs are not checked by ML-Agents "
        "before they train"]


def test_a_search_whose_range_ends_ml_agents_would_refuse_is_refused_naming_their_values(tmp_path, monkeypatch, capsys):
    # A search's trials are not drawn yet: its configs are checked at every list value and both ends of every range.
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text(CROSSED.replace("{opt_values: [0.001, 0.0003]}", "{opt_range: [1.0e-4, 1.0e-2], log: true}"))
    trainer = shlex.join([sys.executable, "-m", "mlagents.trainers.learn"])
    assert main(["c.yaml", "--trainer", trainer, "--search", "random", "--num-trials", "5", "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        "error: ML-Agents refuses the configs of 1 of 2 trials at the ends of its ranges and lists (c.yaml): fix the "
        "options that make them, or leave those runs out; what ML-Agents said:\n  (trainer_type=ppo learning_rate=0.0001): "
        "The option buffer_init_steps was specified in your YAML file for PPOSettings, but is invalid.\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
