"""Results as files: tables of the paper (benchmarks, ablations), figures, the reasoning-trace viewer and
gallery, the headless notebook runner and its index. Reads run directories; nothing below imports it.
"""
