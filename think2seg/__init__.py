"""think2seg: reasoning segmentation of remote-sensing images with an LVLM prompter and a frozen SAM2.

See README.md. The pipeline (one direction):

    data.Sample -> prompters (completion text) -> parsing.parse_completion -> segmenters -> metrics/rewards
"""

__version__ = "0.1.0"
