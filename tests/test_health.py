"""Run health of GRPO runs (think2seg.training.health): each rule on synthetic log streams, the replay of a
shipped run's logs, and a real tiny run whose learning rate makes it collapse, stopped by --stop_on_collapse
after a save."""

import json
import logging
from pathlib import Path

import pytest

from think2seg.training.health import HealthMonitor, HealthRules, replay, replay_run, signals

ASSETS = Path(__file__).resolve().parents[1] / "think2seg" / "assets"


def _row(step, *, zero=0.1, length=40.0, fmt=1.0, iou=0.3, kl=None):
    row = {"step": step, "frac_reward_zero_std": zero, "completions/mean_length": length,
           "rewards/think_format_reward/mean": fmt, "rewards/json_format/mean": fmt, "rewards/mask_iou/mean": iou}
    if kl is not None:
        row["kl"] = kl
    return row


def _run(rows, **rules):
    mon = HealthMonitor(HealthRules(window=3, iou_flat_steps=20, **rules))
    fired_at = {}
    for r in rows:
        for rule in mon.update(r["step"], r):
            fired_at[rule] = r["step"]
    return mon, fired_at


def test_healthy_stream_fires_nothing():
    mon, fired = _run([_row(5 * k, length=40 + k % 3, iou=0.2 + 0.01 * k, kl=0.01) for k in range(1, 40)])
    assert fired == {} and mon.summary()["window"]["kl"] == pytest.approx(0.01)


def test_length_collapse_fires_once_when_the_window_falls_below_half_the_start():
    lengths = [40, 42, 38, 35, 30, 25, 18, 12, 8, 8, 8, 8]
    _, fired = _run([_row(5 * (k + 1), length=v) for k, v in enumerate(lengths)])
    # start mean 40; the window (3 rows) is first below 20 at rows (25, 18, 12): step 40
    assert fired == {"length_collapse": 40}


def test_format_collapse():
    fmts = [0.9, 0.95, 0.85, 0.8, 0.6, 0.4, 0.2, 0.1, 0.1]
    _, fired = _run([_row(5 * (k + 1), fmt=v) for k, v in enumerate(fmts)])
    assert fired == {"format_collapse": 35}  # start 0.9; window (0.6, 0.4, 0.2) = 0.4 < 0.45
    # a format rate that starts near 0 (an untrained model) cannot 'collapse'
    _, fired = _run([_row(5 * (k + 1), fmt=0.05 if k < 3 else 0.0) for k in range(9)])
    assert "format_collapse" not in fired


def test_zero_variance_groups():
    zeros = [0.2, 0.5, 0.9, 0.95, 1.0, 1.0, 1.0]
    _, fired = _run([_row(5 * (k + 1), zero=v) for k, v in enumerate(zeros)])
    assert fired == {"zero_variance": 25}  # (0.9, 0.95, 1.0) = 0.95 > 0.9; (0.5, 0.9, 0.95) is not


def test_iou_flat_at_zero_for_n_steps_and_reset_by_any_reward():
    ious = [0.1, 0.0, 0.0, 0.0, 0.0, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0]
    mon, fired = _run([_row(5 * (k + 1), iou=v) for k, v in enumerate(ious)])
    # zero from step 10 to 25 (15 steps < 20), reset at 30, zero again from 35: fires at 55
    assert fired == {"iou_flat": 55}
    assert "since step 35" in mon.fired["iou_flat"]["message"]


def test_signals_read_peer_reward_names_and_replay_the_shipped_runs():
    row = {"rewards/segzero_box_iou/mean": 0.4, "rewards/segzero_points/mean": 1.0, "rewards/json_format/mean": 0.5,
           "rewards/think_format_reward/mean": 1.0, "completions/mean_length": 30.0}
    assert signals(row) == {"iou": 0.4, "format": 0.75, "length": 30.0}
    for run in sorted(ASSETS.glob("tiny_grpo*")):
        h = replay_run(run)
        state = json.loads((run / "trainer_state.json").read_text())
        assert h["rows"] == sum(1 for r in state["log_history"] if "completions/mean_length" in r) > 10
        assert set(h["fired"]) <= {"length_collapse", "format_collapse", "zero_variance", "iou_flat"}
        # the shipped report's health section is that replay (rebuilt by think2seg ship-policies)
        assert json.loads((run / "training_report.json").read_text())["health"] == json.loads(json.dumps(h))
    assert replay([]) ["rows"] == 0


@pytest.mark.slow
def test_tiny_run_that_collapses_is_stopped_after_a_save(tiny_policy, synth_root, tmp_path, caplog):
    """A random-init tiny policy at learning rate 1.0 answers nothing usable: every group's rewards are equal
    (all 0), so the zero-variance rule fires at the first full window; --stop_on_collapse saves and stops."""
    from tests.test_train import _args
    from think2seg.training.grpo import main

    out = tmp_path / "collapse"
    args = _args(tiny_policy, synth_root, out, 50, "--learning_rate", "1.0", "--save_steps", "1000",
                 "--stop_on_collapse", "true", "--health_window", "2", "--health_iou_flat_steps", "2",
                 "--report_to", "tensorboard")
    with caplog.at_level(logging.WARNING, logger="think2seg.training.health"):
        assert main(args) == 0
    health = json.loads((out / "health.json").read_text())
    done = json.loads((out / "think2seg_done.json").read_text())
    first = min(health["fired"].values(), key=lambda f: f["step"])["step"]
    assert done["global_step"] == first < 50 and done["stopped_by"].startswith("health rule ")
    assert (out / f"checkpoint-{first}").is_dir()  # the save before the stop (save_steps is 1000)
    assert "zero_variance" in health["fired"] and health["window"]["zero_variance"] > 0.9
    warned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("run health:")]
    assert len(warned) == len(health["fired"]) and all("\n" not in w for w in warned)
    assert sorted(done["health"]) == sorted(health["fired"])
    # the window means went to the run's own TensorBoard event file, beside trl's train/* scalars
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted((out / "runs").rglob("events.out.tfevents.*"))
    assert len({e.parent for e in events}) == 1
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "health/zero_variance" in tags and "health/length" in tags and any(t.startswith("train/") for t in tags)
