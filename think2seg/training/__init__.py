"""GRPO training of the prompter with trl's GRPOTrainer: the entry (:mod:`.grpo`, ``accelerate launch -m
think2seg.training.grpo``), model set-up, held-out evaluation during training, stop rules, the
policy-loss token mask, notebook drivers and the shipped policies.
"""
