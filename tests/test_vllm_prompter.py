"""The vLLM generation backend without vLLM or a GPU: what it would ask vLLM for (engine arguments,
one request per sample with the pinned image and seeded sampling parameters), built from a tiny
Qwen2.5-VL checkpoint's processor and its think2seg_prompter.json; and ``think2seg eval`` through it with
a stand-in ``vllm`` module that has vLLM's ``LLM`` / ``LLM.generate`` / ``SamplingParams`` signatures."""

import dataclasses
import importlib.util
import json
import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from think2seg.core.styles import format_answer
from think2seg.core.types import Instance, Sample
from think2seg.prompters import build_prompter
from think2seg.prompters.hf import HFPrompter
from think2seg.segmenters.boxfill import BoxFillSegmenter


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm_images")
    out = []
    for k, (h, w) in enumerate([(64, 96), (80, 80)]):
        path = root / f"im{k}.png"
        Image.fromarray(np.full((h, w, 3), 40 * k, np.uint8)).save(path)
        out.append(Sample(id=f"s{k}", image_id=f"im{k}", image_path=path, question=f"where is thing {k}?",
                          dataset="t", split="val"))
    return out


def test_requests_match_the_hf_prompt_and_pin_the_pixels(tiny_policy, samples):
    p = build_prompter(f"vllm:{tiny_policy}?max_new_tokens=16&gpu_memory_utilization=0.5&max_model_len=2048")
    hf = HFPrompter(tiny_policy)
    assert p.image_size == hf.image_size == (56, 56) and p.template == "compact"  # the checkpoint's meta
    reqs = p.requests(samples, n=1)
    assert [r["prompt"] for r in reqs] == [hf.prompt_text(s.question) for s in samples]
    assert all(r["multi_modal_data"]["image"].size == (56, 56) for r in reqs)
    assert all(r["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 3136} for r in reqs)
    greedy = reqs[0]["sampling"]
    assert greedy["temperature"] == 0.0 and greedy["max_tokens"] == 16 and "seed" not in greedy
    assert greedy["repetition_penalty"] == 1.0 and greedy["skip_special_tokens"]
    engine = p.engine_args()
    assert engine["model"] == str(tiny_policy.resolve()) and engine["max_model_len"] == 2048
    assert engine["gpu_memory_utilization"] == 0.5 and engine["limit_mm_per_prompt"] == {"image": 1}
    assert engine["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 3136}


def test_sampled_requests_are_seeded_per_sample(tiny_policy, samples):
    p = build_prompter(f"vllm:{tiny_policy}")
    a = [r["sampling"] for r in p.requests(samples, n=4, temperature=1.0, seed=0)]
    b = [r["sampling"] for r in p.requests(samples[::-1], n=4, temperature=1.0, seed=0)][::-1]
    assert a == b  # a sample's seed does not depend on its batch or position
    assert a[0]["seed"] != a[1]["seed"] and a[0]["n"] == 4 and (a[0]["top_p"], a[0]["top_k"]) == (1.0, 0)
    assert p.requests(samples[:1], n=4, temperature=1.0, seed=1)[0]["sampling"]["seed"] != a[0]["seed"]
    with pytest.raises(ValueError, match="n > 1 needs temperature"):
        p.requests(samples, n=2)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        build_prompter(f"vllm:{tiny_policy}?gpu_memory_utilization=1.5")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_generate_without_vllm_says_how_to_install_it(tiny_policy, samples):
    with pytest.raises(ImportError, match=r"think2seg\[vllm\]"):
        build_prompter(f"vllm:{tiny_policy}").generate(samples)


# -- a stand-in for the vllm package (not installable here), with vLLM's own signatures -----------------
@dataclasses.dataclass(kw_only=True)
class _SamplingParams:
    """vllm.SamplingParams' fields and defaults (vllm/sampling_params.py); unknown names raise TypeError
    as its msgspec Struct does."""

    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: Any = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    detokenize: bool = True
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    include_stop_str_in_output: bool = False


class _LLM:
    """vllm.LLM's constructor and ``generate`` signatures (vllm/entrypoints/llm.py). Every request is
    answered with the whole image as the box, in the answer format, so the evaluation scores real masks."""

    made: list[dict] = []

    def __init__(self, model: str, *, tokenizer=None, trust_remote_code: bool = False,
                 tensor_parallel_size: int = 1, dtype: str = "auto", seed: int | None = None,
                 gpu_memory_utilization: float = 0.9, mm_processor_kwargs: dict | None = None, **kwargs):
        _LLM.made.append({"model": model, "gpu_memory_utilization": gpu_memory_utilization,
                          "tensor_parallel_size": tensor_parallel_size, "mm_processor_kwargs": mm_processor_kwargs,
                          **kwargs})

    def generate(self, prompts, sampling_params=None, *, use_tqdm=True, lora_request=None, priority=None):
        assert isinstance(sampling_params, list) and len(sampling_params) == len(prompts)
        out = []
        for prompt, params in zip(prompts, sampling_params, strict=True):
            assert isinstance(params, _SamplingParams) and set(prompt) == {"prompt", "multi_modal_data",
                                                                           "mm_processor_kwargs"}
            w, h = prompt["multi_modal_data"]["image"].size
            text = format_answer([Instance(box=(0, 0, w - 1, h - 1), positive=((w // 2, h // 2),) * 2)])
            out.append(SimpleNamespace(outputs=[SimpleNamespace(text=text)] * params.n))
        return out


@pytest.fixture
def fake_vllm(monkeypatch):
    module = ModuleType("vllm")
    module.LLM, module.SamplingParams = _LLM, _SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    _LLM.made.clear()
    return _LLM


def test_cli_eval_with_a_vllm_prompter_runs_to_metrics(tiny_policy, synth_root, tmp_path, fake_vllm, capsys):
    # item 1: evaluate() asked the vLLM prompter for HF generation parameters (model.generation_config of a
    # model it does not hold) and crashed before generating
    from think2seg.cli import main

    out = tmp_path / "v"
    rc = main(["eval", "--data", f"earthreason:{synth_root}", "--split", "val", "--prompter", f"vllm:{tiny_policy}",
               "--segmenter", "boxfill", "--limit", "3", "--batch-size", "2", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["format_ok_rate"] == 1.0
    gen = json.loads((out / "config.json").read_text())["generation"]
    # the SamplingParams really used, under the authors protocol: greedy, no penalty, 2048 tokens
    assert gen == {"backend": "vllm", "generation": "authors", "n": 1, "temperature": 0.0, "top_p": 1.0,
                   "top_k": 0, "repetition_penalty": 1.0, "max_tokens": 2048, "skip_special_tokens": True}
    assert set(gen) - {"backend", "generation"} <= {f.name for f in dataclasses.fields(_SamplingParams)}
    assert len(fake_vllm.made) == 1


def test_vllm_memory_share_leaves_room_for_sam2_and_is_recorded(tiny_policy, synth_root, tmp_path, fake_vllm,
                                                                 monkeypatch):
    # item 7: vLLM took 0.9 of the GPU whatever segmenter then loaded on it
    from think2seg.evaluation import engine
    from think2seg.evaluation.generation import SAM2_WORKING_BYTES, vllm_memory_share
    from think2seg.segmenters.spec import SAM2_PARAMS

    gib = 2**30
    assert vllm_memory_share("sam2:small", None) is None  # no GPU: vLLM's own default
    assert vllm_memory_share("grabcut", 24 * gib) == 0.9 == vllm_memory_share("sam2:small", 80 * gib)
    large = vllm_memory_share("sam2:large", 24 * gib)
    assert large == 0.86 and (1 - large) * 24 * gib >= 4 * SAM2_PARAMS["large"] + SAM2_WORKING_BYTES
    assert vllm_memory_share("sam2:tiny", 16 * gib) > vllm_memory_share("sam2:large", 16 * gib)
    assert vllm_memory_share("hf-sam2", 24 * gib) < 0.9  # transformers' SAM ports hold weights too
    with pytest.raises(ValueError, match="cannot hold vLLM and sam2:large"):
        vllm_memory_share("sam2:large", 3 * gib)

    # what `think2seg eval` gives the engine and writes to config.json (the GPU's size is the one thing faked)
    monkeypatch.setattr(engine, "_gpu_total_bytes", lambda: 24 * gib)
    seg = BoxFillSegmenter()
    cfg = dict(data=f"earthreason:{synth_root}", split="val", limit=2, segmenter="sam2:large")
    engine.evaluate(engine.EvalConfig(prompter=f"vllm:{tiny_policy}", out=str(tmp_path / "a"), **cfg),
                    segmenter=seg, progress=False)
    assert fake_vllm.made[-1]["gpu_memory_utilization"] == 0.86
    assert json.loads((tmp_path / "a" / "config.json").read_text())["engine"]["gpu_memory_utilization"] == 0.86
    # settable: the spec's value wins and is the one recorded
    engine.evaluate(engine.EvalConfig(prompter=f"vllm:{tiny_policy}?gpu_memory_utilization=0.5",
                                      out=str(tmp_path / "b"), **cfg), segmenter=seg, progress=False)
    assert fake_vllm.made[-1]["gpu_memory_utilization"] == 0.5
    assert json.loads((tmp_path / "b" / "config.json").read_text())["engine"]["gpu_memory_utilization"] == 0.5


def test_vllm_prompter_is_refused_under_several_processes(tiny_policy, synth_root):
    # item 4: under accelerate launch every rank built an engine taking 0.9 of GPU 0
    from think2seg.core.errors import UserError
    from think2seg.evaluation.engine import EvalConfig, eval_prompter

    cfg = EvalConfig(data=f"earthreason:{synth_root}", out="unused", prompter=f"vllm:{tiny_policy}")
    with pytest.raises(UserError, match="tensor_parallel_size") as e:
        eval_prompter(cfg, world=2)
    assert "\n" not in str(e.value)
    assert eval_prompter(cfg, world=1).name == f"vllm:{tiny_policy}"  # one process: allowed
