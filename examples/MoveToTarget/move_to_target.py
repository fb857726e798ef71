#!/usr/bin/env python3
"""MoveToTarget: a headless stand-in for a Unity ML-Agents build.

mlagents-learn launches this (as the console script ``MoveToTarget`` that
scripts/install_mlagents.py installs: ``MoveToTarget.exe`` on Windows, and a
``MoveToTarget.app`` bundle on macOS) the way it launches a Unity player: ``-nographics -batchmode --mlagents-port N
-logFile PATH`` plus whatever followed ``--env-args``.  Like a Unity player it
is the gRPC *client* of the trainer and only ever calls
``UnityToExternalProto.Exchange``; the message types come from the installed
mlagents_envs (communicator protocol 1.5.0).

The task: each agent is a point in the square [-1, 1]^2 that must reach a
target.  Observations (4): target minus agent position (dx, dy) and the agent
position (x, y).  Actions (2, continuous, clipped to [-1, 1]): velocity, at
most ``MAX_SPEED`` per step on each axis.  Reward per step: the decrease of the
distance to the target minus ``TIME_PENALTY``; +1 and the end of the episode
when the target is reached; the episode is interrupted after
``--episode-length`` steps.  A uniformly random policy scores about -0.49 per
episode (2% reach the target), a greedy controller about +1.93 (all do).

Every finished episode publishes 1.0 (target reached) or 0.0 on the stats side
channel as ``Environment/Success Rate`` with AVERAGE aggregation, so
TensorBoard shows the fraction of episodes that reached the target in each
summary period (scalar tag ``Environment/Success Rate`` under
``<run-id>/<Behavior>``).

Options for tests (pass them after mlagents-learn's ``--env-args``):
  --seed N               seed of the task (default: the seed the trainer sends)
  --step-delay SECONDS   sleep this long before answering each step
  --crash-after-steps N  exit abruptly (status --crash-exit-code, no reply,
                         no goodbye) when the N-th STEP command arrives; one
                         STEP moves every agent of every area once
  --crash-exit-code N    exit status of that crash (default 3)
  --crash-marker FILE    crash only if FILE does not exist yet (it is created
                         just before crashing), so the trainer's restarted
                         environment keeps running: a crash-once test
  --hang-after-steps N   stop answering (but stay alive) at the N-th STEP
  --episode-length N     steps per episode before it is interrupted (50)
  --agents-per-area N    agents in each training area (8)
  --behavior NAME        behavior name; repeat for several behaviors, each
                         with its own agents (default MoveToTarget)
  --target-radius R      distance that counts as reaching the target (0.1)
Environment parameters sent by the trainer (``environment_parameters`` in the
config) named ``target_radius`` or ``episode_length`` override those options.

The process exits when the trainer closes the connection (reply status 400),
sends QUIT, when a call fails (the trainer went away: CANCELLED, UNKNOWN,
UNAVAILABLE ...), or when its parent process dies (Linux: PR_SET_PDEATHSIG;
elsewhere a watchdog thread polls the parent pid), so it never outlives the
trainer.
"""

import math
import os
import random
import signal
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

COMMUNICATION_VERSION = "1.5.0"
# Version of the Unity package (com.unity.ml-agents) that matches mlagents 1.1.0.
UNITY_PACKAGE_VERSION = "3.0.0"
DEFAULT_BEHAVIOR = "MoveToTarget"
NUM_OBSERVATIONS = 4
NUM_ACTIONS = 2
MAX_SPEED = 0.1
TIME_PENALTY = 0.01
REACH_BONUS = 1.0
MIN_START_DISTANCE = 0.5
SUCCESS_STAT = "Environment/Success Rate"

# Commands (communicator_objects.CommandProto).
STEP, RESET, QUIT = 0, 1, 2

# Side channel ids (mlagents_envs/side_channel/*.py).
STATS_CHANNEL = uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")
ENV_PARAMS_CHANNEL = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")
ENGINE_CONFIG_CHANNEL = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
TRAINING_ANALYTICS_CHANNEL = uuid.UUID("b664a4a9-d86f-5a5f-95cb-e8353a7e8356")
STATS_AVERAGE = 0  # StatsAggregationMethod.AVERAGE


class UsageError(Exception):
    """A bad command line."""


# --------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------


@dataclass
class Options:
    port: int = 5005
    log_file: Optional[str] = None
    seed: Optional[int] = None
    step_delay: float = 0.0
    crash_after_steps: int = 0
    crash_exit_code: int = 3
    crash_marker: Optional[str] = None
    hang_after_steps: int = 0
    episode_length: int = 50
    agents_per_area: int = 8
    behaviors: List[str] = field(default_factory=list)
    target_radius: float = 0.1
    ignored: List[str] = field(default_factory=list)


_VALUE_OPTIONS = {
    "--mlagents-port": ("port", int),
    "-logfile": ("log_file", str),
    "--seed": ("seed", int),
    "--step-delay": ("step_delay", float),
    "--crash-after-steps": ("crash_after_steps", int),
    "--crash-exit-code": ("crash_exit_code", int),
    "--crash-marker": ("crash_marker", str),
    "--hang-after-steps": ("hang_after_steps", int),
    "--episode-length": ("episode_length", int),
    "--agents-per-area": ("agents_per_area", int),
    "--behavior": ("behaviors", str),
    "--target-radius": ("target_radius", float),
}


def parse_args(argv: Sequence[str]) -> Options:
    """Parse Unity-style and own arguments; unknown ones are kept, not fatal (as a Unity player does)."""
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        key = name.lower() if name.lower() == "-logfile" else name
        if key in _VALUE_OPTIONS:
            attr, conv = _VALUE_OPTIONS[key]
            if eq:
                raw = inline
            elif i + 1 < len(argv):
                i += 1
                raw = argv[i]
            else:
                raise UsageError(f"{name} needs a value")
            try:
                value = conv(raw)
            except ValueError:
                raise UsageError(f"{name}: invalid value {raw!r}") from None
            if attr == "behaviors":
                opts.behaviors.append(value)
            else:
                setattr(opts, attr, value)
        else:
            opts.ignored.append(arg)
        i += 1
    if not opts.behaviors:
        opts.behaviors = [DEFAULT_BEHAVIOR]
    if opts.episode_length < 1 or opts.agents_per_area < 1:
        raise UsageError("--episode-length and --agents-per-area must be at least 1")
    if opts.step_delay < 0:
        raise UsageError("--step-delay must not be negative")
    return opts


# --------------------------------------------------------------------------
# the task (pure: no gRPC, no clock)
# --------------------------------------------------------------------------


@dataclass
class AgentState:
    agent_id: int
    x: float = 0.0
    y: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    steps: int = 0

    def distance(self) -> float:
        return math.hypot(self.tx - self.x, self.ty - self.y)

    def observation(self) -> List[float]:
        return [self.tx - self.x, self.ty - self.y, self.x, self.y]


@dataclass
class AgentRecord:
    """One entry of a reply: what AgentInfoProto carries."""

    agent_id: int
    reward: float
    done: bool
    max_step_reached: bool
    observation: List[float]


@dataclass
class StepResult:
    records: Dict[str, List[AgentRecord]]
    # (behavior, reached) for every episode that ended in this step
    episodes: List[Tuple[str, bool]]


class MoveToTargetTask:
    """All agents of all behaviors and areas; ``reset`` and ``step`` return the reply records."""

    def __init__(self, behaviors: Sequence[str], num_agents: int, seed: int,
                 episode_length: int, target_radius: float) -> None:
        self.rng = random.Random(seed)
        self.episode_length = episode_length
        self.target_radius = target_radius
        self.agents: Dict[str, List[AgentState]] = {
            b: [AgentState(agent_id=k * num_agents + i) for i in range(num_agents)]
            for k, b in enumerate(behaviors)
        }

    def _new_episode(self, agent: AgentState) -> None:
        rnd = self.rng.uniform
        agent.x, agent.y = rnd(-0.9, 0.9), rnd(-0.9, 0.9)
        while True:
            agent.tx, agent.ty = rnd(-0.9, 0.9), rnd(-0.9, 0.9)
            if agent.distance() >= max(MIN_START_DISTANCE, 2 * self.target_radius):
                break
        agent.steps = 0

    def reset(self) -> StepResult:
        records: Dict[str, List[AgentRecord]] = {}
        for behavior, agents in self.agents.items():
            records[behavior] = []
            for agent in agents:
                self._new_episode(agent)
                records[behavior].append(
                    AgentRecord(agent.agent_id, 0.0, False, False, agent.observation()))
        return StepResult(records, [])

    def step(self, actions: Dict[str, List[Sequence[float]]]) -> StepResult:
        records: Dict[str, List[AgentRecord]] = {}
        episodes: List[Tuple[str, bool]] = []
        for behavior, agents in self.agents.items():
            out: List[AgentRecord] = []
            behavior_actions = actions.get(behavior, [])
            for index, agent in enumerate(agents):
                action = behavior_actions[index] if index < len(behavior_actions) else ()
                ax = _clip(action[0]) if len(action) > 0 else 0.0
                ay = _clip(action[1]) if len(action) > 1 else 0.0
                before = agent.distance()
                agent.x = _clip(agent.x + MAX_SPEED * ax)
                agent.y = _clip(agent.y + MAX_SPEED * ay)
                agent.steps += 1
                after = agent.distance()
                reward = before - after - TIME_PENALTY
                reached = after < self.target_radius
                timed_out = agent.steps >= self.episode_length
                if reached:
                    reward += REACH_BONUS
                if reached or timed_out:
                    # Unity's encoding of an episode end: the final record with
                    # done=true, then the same agent again with the first
                    # observation of its next episode.
                    out.append(AgentRecord(agent.agent_id, reward, True,
                                           timed_out and not reached, agent.observation()))
                    episodes.append((behavior, reached))
                    self._new_episode(agent)
                    out.append(AgentRecord(agent.agent_id, 0.0, False, False, agent.observation()))
                else:
                    out.append(AgentRecord(agent.agent_id, reward, False, False, agent.observation()))
            records[behavior] = out
        return StepResult(records, episodes)


def _clip(v: float) -> float:
    if v != v:  # NaN
        return 0.0
    return -1.0 if v < -1.0 else 1.0 if v > 1.0 else float(v)


# --------------------------------------------------------------------------
# side channels: 16-byte UUID (little-endian), int32 length, payload
# --------------------------------------------------------------------------


def split_side_channel(data: bytes) -> List[Tuple[uuid.UUID, bytes]]:
    messages = []
    offset = 0
    while offset + 20 <= len(data):
        channel = uuid.UUID(bytes_le=bytes(data[offset:offset + 16]))
        (length,) = struct.unpack_from("<i", data, offset + 16)
        offset += 20
        messages.append((channel, bytes(data[offset:offset + length])))
        offset += length
    return messages


def pack_side_channel(channel: uuid.UUID, payload: bytes) -> bytes:
    return channel.bytes_le + struct.pack("<i", len(payload)) + payload


def stats_message(key: str, value: float, aggregation: int = STATS_AVERAGE) -> bytes:
    encoded = key.encode("ascii")
    payload = struct.pack("<i", len(encoded)) + encoded + struct.pack("<fi", value, aggregation)
    return pack_side_channel(STATS_CHANNEL, payload)


def parse_env_parameter(payload: bytes) -> Optional[Tuple[str, float]]:
    """A FLOAT message of the environment parameters channel, else None (samplers are not supported)."""
    try:
        (n,) = struct.unpack_from("<i", payload, 0)
        key = payload[4:4 + n].decode("ascii")
        (kind,) = struct.unpack_from("<i", payload, 4 + n)
        if kind != 0:
            return None
        (value,) = struct.unpack_from("<f", payload, 8 + n)
        return key, value
    except (struct.error, UnicodeDecodeError):
        return None


# --------------------------------------------------------------------------
# process plumbing: log, parent watch
# --------------------------------------------------------------------------


class Log:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        try:
            self.stream.write(f"[{stamp} pid {os.getpid()}] {message}\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass


def open_log(path: Optional[str]) -> TextIO:
    if not path or path == "-":
        return sys.stderr
    try:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        return open(path, "a", encoding="utf-8")
    except OSError:
        return sys.stderr


def parent_alive(parent: int) -> bool:
    """True while the process that launched us runs.

    POSIX hands an orphan to another parent, so getppid() changes. Windows does
    not: there the process itself is asked whether it still runs.
    """
    if os.name != "nt":
        return os.getppid() == parent
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, parent)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def watch_parent(log: Log) -> None:
    """Make sure this process never outlives the trainer that launched it."""
    parent = os.getppid()

    def on_signal(signum: int, _frame: object) -> None:
        log(f"signal {signum}: exiting")
        os._exit(128 + signum)

    # PR_SET_PDEATHSIG fires when the *thread* that started us exits; mlagents
    # starts environments from its worker processes' main threads, so that is
    # the worker's death.
    signal.signal(signal.SIGTERM, on_signal)
    if hasattr(signal, "SIGHUP"):  # not on Windows
        signal.signal(signal.SIGHUP, on_signal)
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
                log(f"prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}")
        except (OSError, AttributeError) as exc:
            log(f"prctl unavailable: {exc}")
    if not parent_alive(parent):
        log(f"parent {parent} is already gone: exiting")
        os._exit(1)

    # Belt and braces (and the only guard where prctl does not exist).
    def poll() -> None:
        while True:
            time.sleep(1.0)
            if not parent_alive(parent):
                log(f"parent {parent} went away: exiting")
                os._exit(1)

    threading.Thread(target=poll, name="parent-watch", daemon=True).start()


# --------------------------------------------------------------------------
# the gRPC client
# --------------------------------------------------------------------------


class TrainerGone(Exception):
    """The trainer closed the connection or went away: a normal end."""


class NoTrainer(Exception):
    """Nobody answered the first call: nothing to do, but not a normal end."""


class Environment:
    """Talks to the trainer: handshake, then one Exchange per RESET/STEP."""

    def __init__(self, opts: Options, log: Log) -> None:
        import grpc
        from mlagents_envs.communicator_objects import unity_message_pb2, unity_to_external_pb2_grpc
        from mlagents_envs.communicator_objects import agent_info_pb2, brain_parameters_pb2, observation_pb2

        self.grpc = grpc
        self.pb_message = unity_message_pb2
        self.pb_agent = agent_info_pb2
        self.pb_brain = brain_parameters_pb2
        self.pb_obs = observation_pb2
        self.opts = opts
        self.log = log
        self.channel = grpc.insecure_channel(f"localhost:{opts.port}")
        self.stub = unity_to_external_pb2_grpc.UnityToExternalProtoStub(self.channel)
        self.task: Optional[MoveToTargetTask] = None
        self.brains_sent = False
        self.steps = 0
        self.num_areas = 1
        self.trainer_seed = 0
        self.pending_stats: List[bytes] = []
        self.episodes = 0
        self.successes = 0

    # -- transport ----------------------------------------------------------

    def exchange(self, message: Any, first: bool = False) -> Any:
        try:
            # No deadline: the trainer may spend many seconds in a policy
            # update between two steps.  The first call waits for the server.
            reply = self.stub.Exchange(message, wait_for_ready=first or None,
                                       timeout=60.0 if first else None)
        except self.grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            raise TrainerGone(f"call failed: {code}") from None
        if reply.header.status != 200:
            raise TrainerGone(f"trainer answered status {reply.header.status}")
        return reply

    # -- messages -----------------------------------------------------------

    def hello(self) -> Any:
        msg = self.pb_message.UnityMessageProto()
        msg.header.status = 200
        init = msg.unity_output.rl_initialization_output
        init.name = "MoveToTarget"
        init.communication_version = COMMUNICATION_VERSION
        init.package_version = UNITY_PACKAGE_VERSION
        caps = init.capabilities
        caps.baseRLCapabilities = True
        caps.concatenatedPngObservations = True
        caps.compressedChannelMapping = True
        caps.hybridActions = True
        caps.trainingAnalytics = True
        caps.variableLengthObservation = True
        caps.multiAgentGroups = True
        return msg

    def output_message(self, result: StepResult) -> Any:
        msg = self.pb_message.UnityMessageProto()
        msg.header.status = 200
        out = msg.unity_output
        if not self.brains_sent:
            # The trainer learns the behaviors only from the first reply that
            # has agents; without this it would step forever, training nothing.
            for behavior in self.task.agents:
                brain = out.rl_initialization_output.brain_parameters.add()
                brain.brain_name = f"{behavior}?team=0"
                brain.is_training = True
                brain.action_spec.num_continuous_actions = NUM_ACTIONS
                brain.action_spec.num_discrete_actions = 0
            self.brains_sent = True
        for behavior, records in result.records.items():
            entries = out.rl_output.agentInfos[f"{behavior}?team=0"].value
            for rec in records:
                info = entries.add()
                info.id = rec.agent_id
                info.reward = rec.reward
                info.done = rec.done
                info.max_step_reached = rec.max_step_reached
                obs = info.observations.add()
                obs.shape.append(NUM_OBSERVATIONS)
                obs.compression_type = 0
                obs.observation_type = 0
                obs.name = "VectorSensor_size4"
                obs.float_data.data.extend(rec.observation)
        for behavior, reached in result.episodes:
            self.episodes += 1
            self.successes += int(reached)
            self.pending_stats.append(stats_message(SUCCESS_STAT, 1.0 if reached else 0.0))
        if self.pending_stats:
            out.rl_output.side_channel = b"".join(self.pending_stats)
            self.pending_stats = []
        return msg

    def read_side_channel(self, data: bytes) -> None:
        for channel, payload in split_side_channel(data):
            if channel == ENV_PARAMS_CHANNEL:
                parsed = parse_env_parameter(payload)
                if parsed is None:
                    self.log("environment parameter with a sampler: ignored")
                    continue
                key, value = parsed
                self.log(f"environment parameter {key} = {value}")
                if key == "target_radius":
                    self.opts.target_radius = value
                    if self.task:
                        self.task.target_radius = value
                elif key == "episode_length" and value >= 1:
                    self.opts.episode_length = int(value)
                    if self.task:
                        self.task.episode_length = int(value)
            elif channel not in (ENGINE_CONFIG_CHANNEL, TRAINING_ANALYTICS_CHANNEL):
                self.log(f"message on unknown side channel {channel}: ignored")

    def make_task(self) -> None:
        seed = self.opts.seed if self.opts.seed is not None else self.trainer_seed
        self.task = MoveToTargetTask(self.opts.behaviors, self.opts.agents_per_area * self.num_areas,
                                     seed, self.opts.episode_length, self.opts.target_radius)
        self.log(f"task: behaviors {self.opts.behaviors}, {self.num_areas} area(s) x "
                 f"{self.opts.agents_per_area} agents, seed {seed}")

    # -- main loop ----------------------------------------------------------

    def run(self) -> None:
        try:
            reply = self.exchange(self.hello(), first=True)
        except TrainerGone as exc:
            raise NoTrainer(f"no trainer answered on port {self.opts.port} ({exc})") from None
        init = reply.unity_input.rl_initialization_input
        self.trainer_seed = init.seed
        self.num_areas = max(1, init.num_areas)
        self.log(f"connected: trainer communication version {init.communication_version!r}, "
                 f"package {init.package_version!r}, seed {init.seed}, num_areas {init.num_areas}")
        # The trainer waits (with no timeout) for a second, empty message
        # before it goes on; its answer is the first RESET.
        empty = self.pb_message.UnityMessageProto()
        empty.header.status = 200
        reply = self.exchange(empty)
        while True:
            rl_in = reply.unity_input.rl_input
            self.read_side_channel(rl_in.side_channel)
            command = rl_in.command
            if command == QUIT:
                raise TrainerGone("QUIT command")
            if command == RESET or self.task is None:
                if self.task is None:
                    self.make_task()
                result = self.task.reset()
                self.log("reset")
            else:
                self.steps += 1
                if self.opts.crash_after_steps and self.steps >= self.opts.crash_after_steps:
                    self.maybe_crash()
                if self.opts.hang_after_steps and self.steps >= self.opts.hang_after_steps:
                    self.log(f"hanging at step {self.steps} as asked (--hang-after-steps)")
                    while True:
                        time.sleep(3600)
                actions: Dict[str, List[Sequence[float]]] = {}
                for behavior in self.task.agents:
                    key = f"{behavior}?team=0"
                    if key in rl_in.agent_actions:
                        actions[behavior] = [
                            list(a.continuous_actions) or list(a.vector_actions_deprecated)
                            for a in rl_in.agent_actions[key].value
                        ]
                if self.opts.step_delay:
                    time.sleep(self.opts.step_delay)
                result = self.task.step(actions)
                if self.steps % 1000 == 0:
                    self.log(f"step {self.steps}: {self.episodes} episodes, "
                             f"{self.successes} reached the target")
            reply = self.exchange(self.output_message(result))

    def maybe_crash(self) -> None:
        marker = self.opts.crash_marker
        if marker:
            if os.path.exists(marker):
                return
            with open(marker, "w", encoding="utf-8") as fh:
                fh.write(f"crashed at step {self.steps}, pid {os.getpid()}\n")
        self.log(f"crashing at step {self.steps} as asked (--crash-after-steps), "
                 f"exit status {self.opts.crash_exit_code}")
        os._exit(self.opts.crash_exit_code)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        opts = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"move_to_target: error: {exc}", file=sys.stderr)
        return 2
    log = Log(open_log(opts.log_file))
    log(f"MoveToTarget starting: port {opts.port}, args {sys.argv[1:] if argv is None else list(argv)}")
    if opts.ignored:
        log(f"ignored arguments: {opts.ignored}")
    watch_parent(log)
    try:
        env = Environment(opts, log)
    except ImportError as exc:
        log(f"error: {exc}: run with a Python that has grpcio and mlagents_envs "
            f"(set MLAGENTS_PYTHON or run scripts/install_mlagents.py)")
        return 1
    try:
        env.run()
    except NoTrainer as exc:
        log(f"error: {exc}")
        return 1
    except TrainerGone as exc:
        log(f"trainer gone ({exc}) after {env.steps} steps, {env.episodes} episodes, "
            f"{env.successes} reached the target: exiting")
        return 0
    except KeyboardInterrupt:
        log("interrupted: exiting")
        return 130
    finally:
        try:
            env.channel.close()
        except Exception as exc:  # closing a channel the trainer already dropped; nothing left to do
            log(f"closing the channel: {exc.__class__.__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
