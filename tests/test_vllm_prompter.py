"""The vLLM generation backend without vLLM or a GPU: what it would ask vLLM for (engine arguments,
one request per sample with the pinned image and seeded sampling parameters), built from a tiny
Qwen2.5-VL checkpoint's processor and its think2seg_prompter.json."""

import importlib.util

import numpy as np
import pytest
from PIL import Image

from think2seg.core.types import Sample
from think2seg.prompters import build_prompter
from think2seg.prompters.hf import HFPrompter


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
