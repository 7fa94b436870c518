"""``loss_tokens``: which completion tokens carry the GRPO loss (think2seg.training.loss_tokens).

A table of completions -> the text of the span that is trained, with the shipped tiny model's BPE
tokenizer (where ``</think>`` is split over several tokens), and a loss-level check on trl's own
``_compute_loss``: with ``think`` the answer's tokens cannot change the loss, with ``completion`` they do.
"""

from pathlib import Path

import pytest
import torch

from think2seg.training.loss_tokens import check_loss_tokens, think_token_mask, trainer_class

ASSET = Path(__file__).resolve().parents[1] / "think2seg" / "assets" / "tiny_prompter"

ANSWER = '<answer>```json[{"bbox_2d": [1,2,30,40], "positive_points": [[5, 6], [7, 8]]}]```</answer>'
CASES = [
    # completion, the trained prefix (None: every token is trained)
    ("<think>The request refers to runways.</think>\n" + ANSWER, "<think>The request refers to runways.</think>"),
    ("<think></think>" + ANSWER, "<think></think>"),
    ("<think>roads</think><think>more</think>" + ANSWER, "<think>roads</think>"),  # the first close counts
    ("<think>The request refers to runways." + ANSWER, None),  # never closed: all trained
    (ANSWER, None),
    ("</think>" + ANSWER, "</think>"),
]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ASSET)


def _batch(tok, texts, pad_to=None):
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    n = pad_to or max(map(len, ids))
    pad = tok.pad_token_id or 0
    comp = torch.tensor([x + [pad] * (n - len(x)) for x in ids])
    mask = torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x in ids])
    return ids, comp, mask


@pytest.mark.parametrize("text,trained", CASES)
def test_think_mask_table(tok, text, trained):
    ids, comp, mask = _batch(tok, [text], pad_to=len(tok(text, add_special_tokens=False)["input_ids"]) + 5)
    m = think_token_mask(comp, mask, tok)
    k = int(m.sum())
    assert m[0, :k].all() and not m[0, k:].any()  # a prefix
    if trained is None:
        assert k == len(ids[0])
    else:  # the token that completes "</think>" is the last trained one (BPE may merge a next character in)
        assert tok.decode(ids[0][:k]).startswith(trained) and "</think>" not in tok.decode(ids[0][: k - 1])
        assert k < len(ids[0])


def test_think_mask_respects_padding_and_rows(tok):
    texts = [c for c, _ in CASES]
    ids, comp, mask = _batch(tok, texts)
    m = think_token_mask(comp, mask, tok)
    assert m.shape == comp.shape and m.dtype == mask.dtype
    assert not (m.bool() & ~mask.bool()).any()  # never on padding
    for row, (_, trained) in enumerate(CASES):
        k = int(m[row].sum())
        if trained is None:
            assert k == len(ids[row])
        else:
            assert tok.decode(ids[row][:k]).startswith(trained) and "</think>" not in tok.decode(ids[row][: k - 1])


@pytest.mark.parametrize("value,expect", [("completion", "completion"), (" Think ", "think"), ("THINK", "think")])
def test_check_loss_tokens(value, expect):
    assert check_loss_tokens(value) == expect


@pytest.mark.parametrize("value", ["answer", "", "all"])
def test_check_loss_tokens_rejects(value):
    with pytest.raises(ValueError, match="not one of completion, think"):
        check_loss_tokens(value)


def test_trainer_class():
    from trl import GRPOTrainer

    from think2seg.training.loss_tokens import ThinkLossGRPOTrainer

    assert trainer_class("completion") is GRPOTrainer
    assert trainer_class("think") is ThinkLossGRPOTrainer and issubclass(ThinkLossGRPOTrainer, GRPOTrainer)


@pytest.mark.slow
def test_think_loss_ignores_answer_tokens(tiny_policy, synth_root, tmp_path):
    """Through trl's ``_compute_loss`` on a real generation batch of a tiny Qwen2.5-VL: rewriting the answer
    tokens leaves the ``think`` loss unchanged and changes the ``completion`` loss."""
    from think2seg.training.grpo import make_trainer, parse_args

    t2s, cfg = parse_args([
        "--model", f"tiny:{tiny_policy}", "--data", f"earthreason:{synth_root}", "--max_steps", "1",
        "--num_generations", "4", "--per_device_train_batch_size", "4", "--max_completion_length", "8",
        "--use_cpu", "true", "--bf16", "false", "--output_dir", str(tmp_path / "run"), "--report_to", "none",
        "--loss_tokens", "think", "--seed", "0",
    ])
    trainer = make_trainer(t2s, cfg)
    batch = next(iter(trainer.get_train_dataloader()))
    out = trainer._generate_and_score_completions(batch)
    assert "tool_mask" in out
    tok = trainer.processing_class.tokenizer
    think = "<think>The request refers to runway.</think> "
    a = tok(think + "<answer>```json[]```</answer>", add_special_tokens=False)["input_ids"]
    b = list(a)
    k = int(think_token_mask(torch.tensor([a]), torch.ones(1, len(a), dtype=torch.long), tok).sum())
    assert 0 < k < len(a)
    b[k:] = list(reversed(b[k:]))  # other answer tokens, same length
    assert b != a
    n = out["completion_ids"].shape[0]
    for key in [key for key in out if "per_token_logps" in key]:
        out.pop(key)

    ga, gb = (_grad(trainer, out, ids, tok, n, think_only=True) for ids in (a, b))
    assert ga.norm() > 0 and torch.allclose(ga, gb, rtol=1e-5, atol=1e-8)
    fa, fb = (_grad(trainer, out, ids, tok, n, think_only=False) for ids in (a, b))
    assert (fa - fb).norm() > 1e-3 * fa.norm()


def _grad(trainer, out, ids, tok, n, think_only):
    comp = torch.tensor([ids] * n)
    cm = torch.ones_like(comp)
    inputs = dict(out, completion_ids=comp, completion_mask=cm, advantages=torch.linspace(-1.0, 1.0, n))
    if inputs.get("mm_token_type_ids") is not None:  # (B, P + C): text type for the new completion tokens
        p = out["prompt_ids"].shape[1]
        mm = out["mm_token_type_ids"]
        inputs["mm_token_type_ids"] = torch.cat([mm[:, :p], mm.new_zeros(n, comp.shape[1])], dim=1)
    inputs.pop("tool_mask", None)
    if think_only:
        inputs["tool_mask"] = think_token_mask(comp, cm, tok)
    inputs["num_items_in_batch"] = (inputs.get("tool_mask", cm)).sum()
    trainer.model.zero_grad(set_to_none=True)
    trainer._compute_loss(trainer.model, inputs).backward()
    g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten().float()
                   for p in trainer.model.parameters() if p.requires_grad])
    trainer.model.zero_grad(set_to_none=True)
    return g
