"""Reward functions (trl contract), table-driven, every empty-target case included.

The segmenter here is a small box-filling one (mask = union of the boxes) that counts its image
embeddings, so expected IoUs are hand-computable and the once-per-image-per-group rule is checked.
"""

import numpy as np
import pytest
from PIL import Image

from think2seg.core.styles import format_answer
from think2seg.core.types import Instance
from think2seg.rewards import (
    REWARD_WEIGHTS,
    JsonFormatReward,
    MaskIoUReward,
    think2seg_rewards,
    think_format_reward,
)
from think2seg.segmenters.boxfill import BoxFillSegmenter


class SpyBoxFill(BoxFillSegmenter):
    """The box-fill segmenter, counting its image embeddings and predict calls."""

    def __init__(self):
        super().__init__()
        self.embeds = 0
        self.predict_calls = 0

    def set_image(self, image):
        self.embeds += 1
        super().set_image(image)

    def predict(self, prompt_sets):
        self.predict_calls += 1
        return super().predict(prompt_sets)


SIZE = 20
IMG = Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8))
GT = np.zeros((SIZE, SIZE), bool)
GT[0:10, 0:10] = True  # 100 px
EMPTY = np.zeros((SIZE, SIZE), bool)


def ans(*boxes, think="t"):
    return format_answer([Instance(b, ((b[0], b[1]), (b[2], b[3]))) for b in boxes], think=think)


# completion, gt, expected (think_format, json_format default, json_format released quirk, iou)
TABLE = {
    "perfect box": (ans((0, 0, 9, 9)), GT, (1, 1, 1, 1.0)),
    "half box": (ans((0, 0, 4, 9)), GT, (1, 1, 1, 0.5)),
    "two instances union": (ans((0, 0, 4, 9), (5, 0, 9, 9)), GT, (1, 1, 1, 1.0)),
    "box beyond target": (ans((0, 0, 19, 9)), GT, (1, 1, 1, 0.5)),
    "empty answer on a target (the quirk)": (format_answer([]), GT, (1, 0, 1, 0.0)),
    "empty answer on an empty target": (format_answer([]), EMPTY, (1, 1, 1, 1.0)),
    "any box on an empty target": (ans((0, 0, 3, 3)), EMPTY, (1, 1, 1, 0.0)),
    "unparseable on a target": ("<think>x</think><answer>nope</answer>", GT, (1, 0, 0, 0.0)),
    "unparseable on an empty target": ("<think>x</think><answer>nope</answer>", EMPTY, (1, 0, 0, 0.0)),
    "no tags but valid JSON": (
        '[{"bbox_2d": [0,0,9,9], "positive_points": [[1, 1], [2, 2]]}]',
        GT,
        (0, 1, 1, 1.0),
    ),
    "wrong point count": (
        '<think>t</think><answer>[{"bbox_2d": [0,0,9,9], "positive_points": [[1, 1]]}]</answer>',
        GT,
        (1, 0, 0, 0.0),
    ),
}


@pytest.mark.parametrize("name", list(TABLE))
def test_reward_table(name):
    text, gt, (fmt, js, js_quirk, iou) = TABLE[name]
    kw = {"image": [IMG], "gt_mask": [gt]}
    assert think_format_reward([text]) == [fmt]
    assert JsonFormatReward()([text], **kw) == [js]
    assert JsonFormatReward(empty_json_ok_on_target=True)([text], **kw) == [js_quirk]
    assert MaskIoUReward(SpyBoxFill())([text], **kw) == [pytest.approx(iou)]


def test_conversational_completions_and_weights():
    text = ans((0, 0, 9, 9))
    conv = [[{"role": "assistant", "content": text}]]
    assert think_format_reward(conv) == [1.0]
    funcs = think2seg_rewards(SpyBoxFill())
    totals = [
        sum(w * f(conv, image=[IMG], gt_mask=[GT])[0] for w, f in zip(REWARD_WEIGHTS, funcs, strict=False))
    ]
    assert totals == [4.0]  # max total as released: 1 + 1 + 2 x IoU


def test_one_embedding_per_image_per_group():
    fake = SpyBoxFill()
    seg = MaskIoUReward(fake)
    img2 = Image.fromarray(np.full((SIZE, SIZE, 3), 7, np.uint8))
    G = 6
    completions = [ans((0, 0, 9, 9))] * G + [ans((0, 0, 4, 9))] * G
    images = [IMG.copy() for _ in range(G)] + [img2.copy() for _ in range(G)]  # equal content, new objects
    out = seg(completions, image=images, gt_mask=[GT] * (2 * G))
    assert out == [1.0] * G + [0.5] * G
    assert fake.embeds == 2 and fake.predict_calls == 2


def test_shared_parser_parses_each_batch_once():
    _, fmt, iou = think2seg_rewards(SpyBoxFill())
    parser = fmt._parse
    assert iou._parse is parser
    batch = [ans((0, 0, 9, 9)), '<think>t</think><answer>[{"bbox_2d": [1, 2]}]</answer>']
    kw = {"image": [IMG, IMG], "gt_mask": [GT, GT]}
    assert fmt(batch, **kw) == [1.0, 0.0]
    assert iou(batch, **kw) == [1.0, 0.0]
    assert parser.calls == 1  # the second reward reused the first one's parse
    assert fmt([batch[1], batch[0]], **kw) == [0.0, 1.0]  # a new batch is parsed anew, not served stale
    assert parser.calls == 2
    small = Image.fromarray(np.zeros((5, 5, 3), np.uint8))  # same texts, other image size: parsed anew
    assert fmt([batch[1], batch[0]], image=[small, small], gt_mask=[EMPTY[:5, :5]] * 2) == [0.0, 1.0]
    assert parser.calls == 3


def test_parser_style_must_match():
    from think2seg.rewards import BatchParser

    with pytest.raises(ValueError, match="style"):
        MaskIoUReward(SpyBoxFill(), style="bbox", parser=BatchParser("bbox+2pos"))


def test_gt_mask_from_path_and_rle(tmp_path):
    from pycocotools import mask as mask_utils

    p = tmp_path / "m.png"
    Image.fromarray((GT * 255).astype(np.uint8)).save(p)
    rle = mask_utils.encode(np.asfortranarray(GT.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    r = MaskIoUReward(SpyBoxFill())
    text = ans((0, 0, 4, 9))
    assert r([text, text], image=[IMG, IMG], gt_mask=[str(p), rle]) == [pytest.approx(0.5)] * 2


def test_missing_columns_named():
    with pytest.raises(ValueError, match="'image' and 'gt_mask'"):
        MaskIoUReward(SpyBoxFill())(["x"])


def test_iou_distribution_is_logged():
    logged = {}
    text = ans((0, 0, 4, 9))
    MaskIoUReward(SpyBoxFill())(
        [text, ans((0, 0, 9, 9))], image=[IMG, IMG], gt_mask=[GT, GT], log_metric=lambda k, v: logged.setdefault(k, v)
    )
    assert logged["iou/median"] == pytest.approx(0.75)
    assert logged["iou/frac_ge_0.5"] == 1.0 and logged["iou/parse_fail_frac"] == 0.0


def test_mask_iou_with_real_grabcut():
    """The reward through the real weightless segmenter: a bright square on a dark, textured background."""
    from think2seg.segmenters import build_segmenter

    rng = np.random.default_rng(0)
    img = (rng.random((64, 64, 3)) * 40).astype(np.uint8)
    img[16:48, 16:48] = 220
    gt = np.zeros((64, 64), bool)
    gt[16:48, 16:48] = True
    good = format_answer([Instance((14, 14, 49, 49), ((30, 30), (35, 35)))])
    off = format_answer([Instance((0, 0, 15, 15), ((5, 5), (8, 8)))])
    r = MaskIoUReward(build_segmenter("grabcut"))([good, off, format_answer([])], image=[img] * 3, gt_mask=[gt] * 3)
    assert r[0] > 0.9 and r[1] < 0.1 and r[2] == 0.0
