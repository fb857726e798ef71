"""The TensorBoard client and watcher against servers that misbehave, and against real TensorBoards.

A hung or trickling server must cost a poll its deadline and nothing more; an
answer of the wrong shape is "TensorBoard down"; a redirect is not followed.
"""

import json
import socket
import threading
import time
from pathlib import Path

import pytest

import mlagents_learn as ml
from helpers import TensorBoardServer, free_port, wait_until

TAG = "Environment/Cumulative Reward"


class Server:
    """A loopback server whose every connection is handled by `answer(connection)` on a thread of its own."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.port = free_port(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.closing = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while not self.closing.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(connection,), daemon=True).start()

    def handle(self, connection: socket.socket) -> None:
        with connection:
            self.requests.append(connection.recv(65536).split(b"\r\n", 1)[0].decode())
            try:
                self.answer(self, connection)
            except OSError:
                pass

    def close(self) -> None:
        self.closing.set()
        self.listener.close()


@pytest.fixture
def server():
    made = []

    def make(answer):
        made.append(Server(answer))
        return made[-1]

    yield make
    for each in made:
        each.close()


def reply(body: bytes, status: str = "200 OK", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}"
            "Connection: close\r\n\r\n").encode() + body


def never_answers(server, connection) -> None:
    server.closing.wait(60)


def trickles(server, connection) -> None:
    # One byte at a time, each well inside any per-read timeout: only a deadline for the whole request ends it.
    for byte in reply(b"[]"):
        if server.closing.wait(0.2):
            return
        connection.sendall(bytes([byte]))


def test_a_server_that_never_answers_costs_the_request_its_deadline(server):
    hung = server(never_answers)
    with pytest.raises(ml.TensorBoardDown, match="^no answer before the poll's deadline$"):
        ml.TensorBoardClient(hung.url).runs(time.monotonic() + 0.5)


def test_a_server_that_trickles_its_answer_costs_the_request_its_deadline(server):
    slow = server(trickles)  # its whole answer would take 15 s; the request may take 1 s
    with pytest.raises(ml.TensorBoardDown, match="^no answer before the poll's deadline$"):
        ml.TensorBoardClient(slow.url).runs(time.monotonic() + 1.0)
    assert slow.requests == ["GET /data/runs HTTP/1.1"]


def test_a_redirect_is_not_followed(server):
    elsewhere = server(lambda s, c: c.sendall(reply(b"[]")))
    moved = server(lambda s, c: c.sendall(reply(b"", "302 Found", f"Location: {elsewhere.url}/data/runs\r\n")))
    with pytest.raises(ml.TensorBoardDown, match=r"^HTTP 302 \(redirects are not followed\)$"):
        ml.TensorBoardClient(moved.url).runs(time.monotonic() + 5)
    assert elsewhere.requests == []


@pytest.mark.parametrize("call, body, message", [
    ("runs", b"null", "an answer of the wrong shape from /data/runs"),
    ("runs", b'{"a": 1}', "an answer of the wrong shape from /data/runs"),
    ("runs", b'["a", 3]', "an answer of the wrong shape from /data/runs"),
    ("environment", b"[]", "an answer of the wrong shape from /data/environment"),
    ("scalars", b"[]", "an answer of the wrong shape from scalars_multirun"),
    ("scalars", b"null", "an answer of the wrong shape from scalars_multirun"),
    ("scalars", b'{"r-0/B": [[1, 2]]}', "an answer of the wrong shape from scalars_multirun"),
    ("scalars", b'{"r-0/B": [[1, "x", 3]]}', "an answer of the wrong shape from scalars_multirun"),
    ("scalars", b"<html>", "an answer that is not JSON"),
])
def test_an_answer_of_the_wrong_shape_is_tensorboard_down(server, call, body, message):
    odd = server(lambda s, c: c.sendall(reply(body)))
    client = ml.TensorBoardClient(odd.url)
    deadline = time.monotonic() + 5
    with pytest.raises(ml.TensorBoardDown, match=f"^{message}$"):
        if call == "scalars":
            client.scalars(TAG, ["r-0/B"], deadline)
        else:
            getattr(client, call)(deadline)


def test_nothing_listening_is_tensorboard_down():
    with pytest.raises(ml.TensorBoardDown, match="^ConnectionRefusedError$"):
        ml.TensorBoardClient(f"http://127.0.0.1:{free_port(1)}").runs(time.monotonic() + 5)


@pytest.mark.parametrize("served, wanted, found", [
    (["r-0/B", "r-1/B"], [("r-0", "B")], {("r-0", "B"): "r-0/B"}),                 # the Rust data server
    (["r-0\\B", "r-1\\B"], [("r-0", "B"), ("r-1", "B")],                             # the Python loader on Windows
     {("r-0", "B"): "r-0\\B", ("r-1", "B"): "r-1\\B"}),
    (["results/r-0/B"], [("r-0", "B")], {("r-0", "B"): "results/r-0/B"}),         # a logdir above the results
    (["results\\r-0\\B"], [("r-0", "B")], {("r-0", "B"): "results\\r-0\\B"}),
    (["r-0/B", "old/r-0/B"], [("r-0", "B")], {("r-0", "B"): "r-0/B"}),            # the exact name wins
    (["a/r-0/B", "b/r-0/B"], [("r-0", "B")], {}),                                   # ambiguous: neither
    (["r-10/B", "xr-0/B", "r-0/BB"], [("r-0", "B")], {}),                           # whole names only
    (["r-0/B"], [("r-0", "C")], {}),
])
def test_each_run_is_found_under_the_name_tensorboard_serves_it(served, wanted, found):
    assert ml.tensorboard_names(served, wanted) == found


def python_loader(server, connection) -> None:
    """A TensorBoard as Windows has it: the Python loader names runs with backslashes."""
    request = server.requests[-1]
    if request.startswith("GET /data/environment"):
        connection.sendall(reply(b'{"data_location": "results"}'))
    elif request.startswith("GET /data/runs"):
        connection.sendall(reply(b'["r-0\\\\B", "r-1\\\\B"]'))
    else:
        connection.sendall(reply(json.dumps({"r-0\\B": [[1.0, 100, 0.5], [2.0, 200, 0.75]]}).encode()))


def test_the_watcher_reads_runs_named_with_backslashes(server, tmp_path):
    windows = server(python_loader)
    watcher = ml.MetricsWatcher(ml.TensorBoardClient(windows.url), interval=60, results_dir=tmp_path)
    watcher.connect()
    watcher.want(ml.MetricsRequest((TAG,), (("r-0", "B"), ("r-1", "B"))))
    snapshot = watcher.poll_once()
    assert dict(snapshot.points) == {("r-0", "B", TAG): [(100.0, 0.5), (200.0, 0.75)]}
    assert "POST /data/plugin/scalars/scalars_multirun HTTP/1.1" in windows.requests  # (then its tags: r-1 has no point)


def test_a_poll_of_a_hung_server_ends_by_its_deadline_and_says_so_once(server, tmp_path, monkeypatch):
    monkeypatch.setattr(ml, "POLL_DEADLINE", 0.5)
    hung = server(never_answers)
    watcher = ml.MetricsWatcher(ml.TensorBoardClient(hung.url), interval=60, results_dir=tmp_path)
    watcher.connect()
    watcher.want(ml.MetricsRequest((TAG,), (("r-0", "B"),)))
    assert watcher.poll_once() is None and watcher.poll_once() is None
    assert watcher.take_notes() == [("warn", f"TensorBoard at {hung.url} does not answer (no answer before the poll's "
                                             "deadline); "
                                             "training goes on, stop conditions are checked again at each poll")]


def test_the_supervisor_never_waits_for_a_hung_tensorboard(server, tmp_path, monkeypatch):
    # The watcher's own thread polls; the loop reads its latest snapshot and goes on.
    monkeypatch.setattr(ml, "POLL_DEADLINE", 30)
    hung = server(never_answers)
    watcher = ml.MetricsWatcher(ml.TensorBoardClient(hung.url), interval=0.1, results_dir=tmp_path)
    watcher.want(ml.MetricsRequest((TAG,), (("r-0", "B"),)))
    watcher.start()
    try:
        wait_until(lambda: hung.requests, 10)
        assert watcher.latest() is None and watcher.take_notes() == []  # still waiting, and nobody waits for it
    finally:
        hung.close()  # the hung request ends, the thread sees the server gone
        watcher.stop()
    assert not watcher._thread.is_alive()


# -- against a real TensorBoard ---------------------------------------------------------

def write_events(folder: Path, run: str, points) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder / run))
    for step, value in points:
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=TAG, simple_value=value)])))
    writer.close()


def test_a_tensorboard_that_reads_another_folder_is_named_with_both_folders(tmp_path):
    ours, other = tmp_path / "results", tmp_path / "other"
    ours.mkdir()
    other.mkdir()
    with TensorBoardServer(str(other)) as board:
        watcher = ml.MetricsWatcher(ml.TensorBoardClient(board.url), interval=60, results_dir=ours)
        watcher.connect()
        watcher.connect()  # said once only
    assert watcher.take_notes() == [
        ("say", f"TensorBoard: {board.url}"),
        ("warn", f"TensorBoard at {board.url} reads {other}, not this sweep's results {ours}: stop conditions cannot "
                 "see the runs. Pass --tensorboard-url with a free port (e.g. http://localhost:6007) and the sweep "
                 "starts its own TensorBoard there"),
        ("say", f"TensorBoard: {board.url}"),
    ]


def test_a_tensorboard_above_the_results_folder_serves_the_runs_with_a_prefix(tmp_path):
    write_events(tmp_path / "results", "r-0/B", [(100, 1.5)])
    with TensorBoardServer(str(tmp_path)) as board:
        watcher = ml.MetricsWatcher(ml.TensorBoardClient(board.url), interval=60, results_dir=tmp_path / "results")
        watcher.connect()
        watcher.want(ml.MetricsRequest((TAG,), (("r-0", "B"),)))
        snapshot = wait_until(lambda: (found := watcher.poll_once()) and found.points and found, 30)
    assert dict(snapshot.points) == {("r-0", "B", TAG): [(100.0, 1.5)]}
    assert watcher.take_notes() == [("say", f"TensorBoard: {board.url}")]


def test_runs_with_events_on_disk_that_tensorboard_never_serves_are_warned_about(tmp_path, monkeypatch):
    # A relative logdir (or a remote one) cannot be compared: the runs it does not serve tell.
    monkeypatch.setattr(ml, "UNSERVED_GRACE", 0.0)
    ours = tmp_path / "results"
    write_events(ours, "r-0/B", [(100, 1.0)])
    (tmp_path / "other").mkdir()
    with TensorBoardServer(str(tmp_path / "other")) as board:
        watcher = ml.MetricsWatcher(ml.TensorBoardClient(board.url), interval=60, results_dir=ours)
        watcher.healthy = True  # as if connected, without the folder check
        watcher.want(ml.MetricsRequest((TAG,), (("r-0", "B"),)))
        watcher.poll_once()
        watcher.poll_once()
        watcher.poll_once()
    assert watcher.take_notes() == [
        ("warn", f"TensorBoard at {board.url} does not serve r-0/B, whose events are in {ours / 'r-0' / 'B'}: it reads "
                 f"another folder than this sweep's results {ours}; stop conditions cannot see the runs. Pass "
                 "--tensorboard-url with a free port (e.g. http://localhost:6007) and the sweep starts its own "
                 "TensorBoard there")]


class ScriptedClient:
    """A TensorBoard client whose answers the test scripts: `down` makes every call fail."""

    host, url = "localhost", "http://scripted"

    def __init__(self, points) -> None:
        self.points, self.down, self.calls = points, False, 0

    def check(self) -> None:
        self.calls += 1
        if self.down:
            raise ml.TensorBoardDown("ConnectionRefusedError", nothing_there=True)

    def environment(self, deadline):
        self.check()
        return {}

    def runs(self, deadline):
        self.check()
        return ["r-0/B"]

    def scalars(self, tag, runs, deadline):
        self.check()
        return {"r-0/B": self.points}


def test_a_final_poll_that_gets_no_answer_keeps_the_last_good_points_marked_stale(tmp_path):
    # A TensorBoard hiccup at the very end blanked every metric and the Best line.
    client = ScriptedClient([(1.0, 100.0, 0.5)])
    watcher = ml.MetricsWatcher(client, interval=60, results_dir=tmp_path)
    request = ml.MetricsRequest((TAG,), (("r-0", "B"),))
    watcher.want(request)
    watcher.start()
    wait_until(watcher.latest, 10)
    client.down = True
    final = watcher.stop(final=request)
    assert (dict(final.points), final.stale) == ({("r-0", "B", TAG): [(100.0, 0.5)]}, True)


def test_waiting_for_a_tensorboard_it_started_keeps_the_watchers_own_time(tmp_path):
    # It slept on real time though a clock is injected: with a clock that only sleep moves, it never ended.
    clock, slept = [0.0], []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    client = ScriptedClient([])
    client.down = True
    server = type("Server", (), {"poll": lambda self: None})()
    watcher = ml.MetricsWatcher(client, interval=60, results_dir=tmp_path, start_server=lambda: server,
                                clock=lambda: clock[0], sleep=sleep)
    done = threading.Thread(target=watcher.connect, daemon=True)
    done.start()
    done.join(10)
    assert not done.is_alive()
    assert len(slept) == ml.TENSORBOARD_START_TIMEOUT / 0.5 and watcher.healthy is False


def test_a_typo_in_a_tag_the_sweep_reads_is_said_once_with_the_runs_tags_and_the_closest(tmp_path):
    # `Cumulative reward` (lower-case r): no warning, the rule never fired, the summary had an empty column.
    ours = tmp_path / "results"
    write_events(ours, "r-0/B", [(100, 1.0)])
    typo = "Environment/Cumulative reward"
    with TensorBoardServer(str(ours)) as board:
        client = ml.TensorBoardClient(board.url)
        asked = []
        tags = client.tags
        client.tags = lambda deadline: asked.append(1) or tags(deadline)
        watcher = ml.MetricsWatcher(client, interval=60, results_dir=ours,
                                    uses=ml.tag_uses(TAG, [ml.StopRule("B", typo, min=0.0)]))
        watcher.connect()
        watcher.want(ml.MetricsRequest((TAG, typo), (("r-0", "B"),)))
        wait_until(lambda: (found := watcher.poll_once()) and found.points and found, 30)
        watcher.poll_once()
    assert watcher.take_notes()[1:] == [("warn", f"TensorBoard has no point of the tag '{typo}' (opt_stop of B) in r-0/B, "
                                                 f"which has points of {TAG}: did you mean '{TAG}'? Tags are case-sensitive; "
                                                 "its stop rule never fires until it is fixed")]
    assert len(asked) == 1  # once said, the tags are not asked for again


@pytest.mark.parametrize("tags, use, said", [
    (["Losses/Value Loss", "Environment/Cumulative Reward"], "--metric",
     "TensorBoard has no point of the tag 'Reward' (--metric) in r-0/B, which has points of Environment/Cumulative "
     "Reward, Losses/Value Loss: did you mean 'Environment/Cumulative Reward'? Tags are case-sensitive; its column "
     "stays empty until it is fixed"),
    ([f"Policy/T{n:02d}" for n in range(13)] + ["Environment/Rewards"], "", "TensorBoard has no point of the tag "
     "'Reward' in r-0/B, which has points of Environment/Rewards, Policy/T00, Policy/T01, Policy/T02, Policy/T03, "
     "Policy/T04, Policy/T05, Policy/T06, Policy/T07, Policy/T08, Policy/T09, Policy/T10 and 2 more: did you mean "
     "'Environment/Rewards'? Tags are case-sensitive; its column stays empty until it is fixed"),
])
def test_what_is_said_of_a_missing_tag(tags, use, said):
    assert ml.missing_tag("Reward", use, "r-0/B", tags) == said


def test_a_tag_in_the_runs_tags_is_never_said_missing_and_not_asked_for_again(tmp_path):
    client = ScriptedClient([(1.0, 100.0, 0.5)])
    asked = []
    client.tags = lambda deadline: asked.append(1) or {"r-0/B": [TAG, "Later"]}
    client.scalars = lambda tag, runs, deadline: {"r-0/B": [(1.0, 100.0, 0.5)]} if tag == TAG else {}
    watcher = ml.MetricsWatcher(client, interval=60, results_dir=tmp_path)
    watcher.healthy = True
    watcher.want(ml.MetricsRequest((TAG, "Later"), (("r-0", "B"),)))  # "Later": a tag the run has not written yet
    watcher.poll_once()
    watcher.poll_once()
    assert (watcher.take_notes(), len(asked)) == ([], 1)


def test_a_tag_not_nearly_like_any_the_run_has_is_said_missing_only_once_the_run_has_ended(tmp_path):
    # ML-Agents writes Losses/* only after the first policy update, summaries after the first Environment/* points.
    client = ScriptedClient([(1.0, 100.0, 0.5)])
    client.tags = lambda deadline: {"r-0/B": [TAG]}
    client.scalars = lambda tag, runs, deadline: {"r-0/B": [(1.0, 100.0, 0.5)]} if tag == TAG else {}
    watcher = ml.MetricsWatcher(client, interval=60, results_dir=tmp_path, uses={"Losses/Policy Loss": "opt_stop of B"})
    watcher.healthy = True
    watcher.want(ml.MetricsRequest((TAG, "Losses/Policy Loss"), (("r-0", "B"),)))
    watcher.poll_once()
    assert watcher.take_notes() == []  # it may come with the first update
    watcher.want(ml.MetricsRequest((TAG, "Losses/Policy Loss"), (("r-0", "B"),), final=frozenset({"r-0"})))
    watcher.poll_once()
    assert [kind for kind, _ in watcher.take_notes()] == ["warn"]  # the run ended without it


@pytest.mark.parametrize("tag, tags, nearly", [
    ("Environment/Cumulative reward", [TAG], True),  # case
    ("Environment/Cumulativ Reward", [TAG], True),  # a letter
    ("Losses/Policy Loss", [TAG, "Environment/Episode Length"], False),
    ("Score", ["score"], True),
])
def test_what_nearly_matches_a_tag(tag, tags, nearly):
    assert ml.nearly_one_of(tag, tags) is nearly
