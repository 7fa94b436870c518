"""The in-training evaluation against ``think2seg eval`` and against the next backward, the metadata of
every checkpoint, and the stop file: one process, tiny Qwen2.5-VL of the real class (the shipped warm-started
one where answers must end before the evaluation's 2,048-token cap, else the random-init test policy)."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration, TrainerControl, TrainerState

from think2seg.core.records import read_records
from think2seg.prompters import build_prompter
from think2seg.prompters.families import META_FILE
from think2seg.prompters.tiny import ASSET_DIR
from think2seg.training.grpo import Think2SegArgs

TIMINGS = ("gen_s", "seg_s")


@pytest.fixture(scope="module")
def released_like(tmp_path_factory):
    """The shipped tiny policy (it ends its answers) with a generation config as Qwen's releases ship it
    (repetition penalty 1.05)."""
    d = tmp_path_factory.mktemp("rp") / "ckpt"
    shutil.copytree(ASSET_DIR, d, ignore=shutil.ignore_patterns("warmstart_report.json"))
    path = d / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "repetition_penalty": 1.05}))
    return d


def _live(ckpt: Path):
    """The policy as a trainer holds it: loaded by transformers, in train mode, its processor left-padded."""
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(ckpt, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(ckpt)
    processor.tokenizer.padding_side = "left"
    return model.train(), processor


def _in_training_eval(ckpt: Path, data: Path, out: Path, model=None, processor=None) -> Path:
    from think2seg.training.heldout_eval import EvalCallback

    if model is None:
        model, processor = _live(ckpt)
    meta = json.loads((ckpt / META_FILE).read_text())
    t2s = Think2SegArgs(model=f"tiny:{ckpt}", data=f"earthreason:{data}", eval_split="val", eval_limit=2,
                        segmenter="boxfill", template=meta["template"], image_size=meta["image_size"])
    args = SimpleNamespace(output_dir=str(out), max_completion_length=16, per_device_train_batch_size=2,
                           deepspeed=None)
    EvalCallback(t2s).on_train_begin(args, TrainerState(), TrainerControl(), model=model, processing_class=processor)
    return out / "evals" / "step-0"


def _records(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in read_records(run / "records.jsonl")]


@pytest.mark.slow
def test_in_training_eval_gives_the_records_of_cli_eval(released_like, synth_root, tmp_path):
    # item 6: the curve decoded with the checkpoint's config (repetition penalty 1.05) and max_completion_length
    # new tokens, `think2seg eval` with the authors' (1.0, 2048): the same weights scored differently
    from think2seg.cli import main

    live = _in_training_eval(released_like, synth_root, tmp_path / "train")
    cli = tmp_path / "cli"
    assert main(["eval", "--data", f"earthreason:{synth_root}", "--split", "val", "--prompter", f"hf:{released_like}",
                 "--segmenter", "boxfill", "--questions", "all", "--limit", "2", "--batch-size", "8",
                 "--out", str(cli)]) == 0
    assert len(_records(live)) == 2 and _records(live) == _records(cli)
    gen = json.loads((live / "config.json").read_text())["generation"]
    assert gen == json.loads((cli / "config.json").read_text())["generation"]
    assert gen["repetition_penalty"] == 1.0 and gen["max_new_tokens"] == 2048 and gen["generation"] == "authors"


def test_live_generation_leaves_materialised_parameters_usable_by_backward(released_like, synth_root, tmp_path):
    # item 2, the autograd half, without DeepSpeed: ZeRO-3 materialises a persistent parameter inside the first
    # forward that needs it and keeps it. Reproduced here with a pre-forward hook that gives every linear
    # weight its storage on first use; the evaluation comes before the first step, then a backward
    model, processor = _live(released_like)
    stash = {}
    tied = model.get_output_embeddings()  # shares its weight with the input embeddings
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not tied:
            stash[module] = module.weight.detach().clone()
            module.weight.data = torch.empty(0)

            def fetch(m, _inputs):
                if m.weight.numel() == 0:
                    m.weight.data = stash[m].clone()

            module.register_forward_pre_hook(fetch)
    _in_training_eval(released_like, synth_root, tmp_path / "run", model, processor)
    touched = [m.weight for m in stash if m.weight.numel()]
    assert touched and not any(w.is_inference() for w in touched)
    batch = processor(text=["<think>a</think>"], return_tensors="pt")
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()  # under inference_mode: "Inference tensors cannot be saved for backward"
    assert loss.isfinite() and any(w.grad is not None for w in touched)


def test_every_checkpoint_carries_the_prompter_meta_and_a_bare_one_is_refused(tiny_policy, tmp_path):
    # item 9: hf:<run>/checkpoint-N of a 56 px run was driven at the family's 840 px, silently
    from think2seg.prompters.families import MissingMetaError
    from think2seg.training.meta import PrompterMetaCallback, write_prompter_meta

    run = tmp_path / "run"
    shutil.copytree(tiny_policy, run / "checkpoint-2")
    (run / "checkpoint-2" / META_FILE).unlink()
    t2s = Think2SegArgs(template="compact", image_size=56)
    write_prompter_meta(t2s, run)
    with pytest.raises(MissingMetaError, match=f"checkpoint-2 has no {META_FILE}") as e:
        build_prompter(f"hf:{run / 'checkpoint-2'}")
    assert "\n" not in str(e.value)
    with pytest.raises(MissingMetaError):
        build_prompter(f"tiny:{run / 'checkpoint-2'}")
    state = TrainerState(global_step=2)
    PrompterMetaCallback(t2s).on_save(SimpleNamespace(output_dir=str(run)), state, TrainerControl())
    assert json.loads((run / "checkpoint-2" / META_FILE).read_text())["image_size"] == 56
    assert build_prompter(f"hf:{run / 'checkpoint-2'}").image_size == (56, 56)
    assert build_prompter(f"hf:{tiny_policy}").image_size == (56, 56)  # no run around it: read as before


def test_stop_file_stops_after_the_step_and_is_removed(tmp_path):
    # item 5: a stop that needs no signal (works whatever the launcher does with signals)
    from think2seg.training.stop import STOP_FILE, StopSignalCallback, shutdown_timeout_warning

    cb = StopSignalCallback(signals=(), stop_file=tmp_path / STOP_FILE)
    args, state = SimpleNamespace(), TrainerState(global_step=3)
    cb.on_train_begin(args, state, TrainerControl())
    assert not cb.on_step_end(args, state, TrainerControl()).should_training_stop
    (tmp_path / STOP_FILE).touch()
    assert cb.on_step_end(args, state, TrainerControl()).should_training_stop and cb.stopped_by == "stop file"
    cb.on_train_end(args, state, TrainerControl())
    assert not (tmp_path / STOP_FILE).exists()  # a resumed run does not stop at once
    # under torch elastic the launcher's shutdown timeout is checked (the workers inherit it)
    assert shutdown_timeout_warning({}) is None
    assert "TORCH_ELASTIC_SHUTDOWN_TIMEOUT=1800" in shutdown_timeout_warning({"TORCHELASTIC_RUN_ID": "x"})
    assert shutdown_timeout_warning({"TORCHELASTIC_RUN_ID": "x", "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "1800"}) is None
