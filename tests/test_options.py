"""Every option once: the command line, the Python API and the site file refuse the same bad value, each naming the
option its own way, and no face states a bound or a default of its own."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import ctrt
from ctrt.options import OPTIONS, TRACKER_OPTIONS, Option
from conftest import invoke, message_lines

ROOT = Path(ctrt.__file__).parent
LOAD = {"device", "threads", "reconnects"}  # ctrt.load's bounded keywords (reconnects: Model.track's too)


SESSION = {"fps"}  # Model.session's alone: a run counts the frames between two it tracks, a session is told the time


def bounded() -> list[Option]:
    """The run's bounded options (those of every face)."""
    return [o for o in OPTIONS.values() if (o.low is not None or o.high is not None or o.choices) and o.name not in SESSION]


def bad_value(option: Option) -> object:
    if option.choices:
        return "bogus"
    if option.upper is not None:
        return option.kind(option.upper * 2 + 1)
    return option.kind(option.low - 1)  # type: ignore[operator]


def shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def toml(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


@pytest.fixture(scope="module")
def model(demo_onnx):
    with ctrt.load(demo_onnx, device="cpu") as opened:
        yield opened


CASES = [o for o in bounded() if o.name != "threshold"]


@pytest.mark.parametrize("option", CASES, ids=[o.name for o in CASES])
def test_every_face_refuses_the_same_bad_value_in_its_own_words(option, model, demo_onnx, tmp_path):
    value = bad_value(option)
    words = option.check.__self__.refuse(value).args[0].split(": ", 1)[1]  # what the table says of it
    # The command line: one line, the flag.
    flag = option.cli.split("/")[0]
    result = invoke("run", demo_onnx, "--source", "clip.avi", flag, str(value))
    lines = message_lines(result.output)
    assert result.exit_code == 2 and lines == [f"error: {flag} {shown(value)}: {words}"], result.output
    # Python: a CtrtError naming the keyword.
    keyword = "threshold" if option.name == "track_thresh" else option.name
    with pytest.raises(ctrt.CtrtError) as error:
        if option.name in TRACKER_OPTIONS and option.name != "track_thresh":
            ctrt.tracker_preset(**{keyword: value})
        elif option.name in LOAD - {"reconnects"}:
            ctrt.load(demo_onnx, **{keyword: value})
        else:
            model.track("clip.avi", **{keyword: value})
    assert error.value.option == keyword and str(error.value) == f"{keyword} {shown(value)}: {words}"
    if option.site is None:  # a run's length is the command line's and the caller's, not the site's
        return
    # The site file: its name and the key, from --check and from ctrt.read_site.
    section, key = option.site.split(".")
    camera = '[[camera]]\nname = "door"\nsource = "0"\n'
    text = (camera + f"{key} = {toml(value)}\n") if section == "camera" else f"[{section}]\n{key} = {toml(value)}\n" + camera
    site = tmp_path / "site.toml"
    site.write_text(text)
    where = f"camera[0].{key}" if section == "camera" else option.site
    expected = f"{site}: {where} {shown(value)}: {words}"
    result = invoke("run", "--config", site, "--check")
    assert result.exit_code == 2 and message_lines(result.output) == [f"error: {expected}"], result.output
    with pytest.raises(ctrt.CtrtError) as error:
        ctrt.read_site(str(site))
    assert str(error.value) == expected and error.value.option == option.name


def test_every_bounded_run_option_has_a_flag_a_site_key_and_a_python_keyword():
    from ctrt.cli.tracking import run

    run_flags = set(inspect.signature(run).parameters)
    plan_keywords = set(inspect.signature(ctrt.plan_run).parameters) | set(inspect.signature(ctrt.load).parameters) \
        | set(TRACKER_OPTIONS)
    for option in bounded():
        assert option.site or option.name == "max_frames", option.name
        assert option.name in run_flags or option.name == "threshold", option.name
        assert option.name in plan_keywords, option.name


def test_the_faces_defaults_are_the_tables():
    """No face keeps a default of its own: the CLI's parameters, ctrt.load, plan_run, the tracker's settings and the
    service options all start from the table."""
    from ctrt.cli.tracking import run
    from ctrt.runtime.backends.registry import LoadOptions

    faces = [inspect.signature(run).parameters, inspect.signature(ctrt.load).parameters,
             inspect.signature(ctrt.plan_run).parameters]
    checked = 0
    for parameters in faces:
        for name, parameter in parameters.items():
            if name in OPTIONS and parameter.default is not inspect.Parameter.empty and name != "tracker":
                assert parameter.default == OPTIONS[name].default, name
                checked += 1
    assert checked > 40
    assert ctrt.TrackerConfig().track_thresh == OPTIONS["track_thresh"].default
    assert LoadOptions().reconnects == OPTIONS["reconnects"].default
    assert ctrt.MqttOptions("mqtt://h/p").rate_hz == OPTIONS["publish_rate"].default
    assert ctrt.MqttOptions("mqtt://h/p").buffer == OPTIONS["publish_buffer"].default
    assert ctrt.HttpOptions("0").stale_after == OPTIONS["stale_after"].default
    assert ctrt.HttpOptions("0").fps == OPTIONS["http_fps"].default


def literal(number: float) -> str:
    """A regex for a number as Python source may write it: 86400, 86_400, 86400.0, 86_400.0."""
    whole = int(number)
    digits = f"{whole:,}".replace(",", "_?") if number == whole else re.escape(f"{number:g}")
    return rf"(?<![\w.]){digits}(?:\.0)?(?![\w.])"


def test_no_bound_is_written_outside_the_table():
    """The bounds that only the run's options have (TensorRT's top-K limit, a day of seconds, a day of frames) are
    compared against nowhere else: no comparison and no typer min/max outside the table uses them."""
    numbers = {float(OPTIONS[name].upper) for name in ("topk", "segment", "stale_after", "max_age")}
    assert numbers == {3840.0, 86400.0, 2592000.0}
    comparison = re.compile(r"(<=?|>=?|min=|max=)\s*$")
    found = []
    for path in ROOT.rglob("*.py"):
        if path.name in ("options.py", "trt_rules.py"):  # the table, and TensorRT's own limit it cites
            continue
        for number, text in ((n, path.read_text()) for n in numbers):
            for match in re.finditer(literal(number), text):
                before = text[max(0, match.start() - 12): match.start()]
                if comparison.search(before):
                    found.append(f"{path.relative_to(ROOT)}: {text[match.start() - 12: match.end()]!r}")
    assert not found, found


def test_typer_states_no_bound_of_a_run_option():
    from ctrt.cli.tracking import run

    source = inspect.getsource(run)
    assert "min=" not in source and "max=" not in source
