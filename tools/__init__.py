"""Research tools that are not part of the installed package: run them from a checkout.

python -m tools.probe --model DIR        # what the image tokens carry (linear probes)
python -m tools.ablation                 # one perception token vs coordinates as text
python -m tools.param_table              # the parameter table of docs/model.md
"""
