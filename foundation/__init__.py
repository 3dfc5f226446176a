"""lstmfpga.foundation: what every stage shares; NumPy and the standard library only.

Errors, atomic writes, fixed-point arithmetic, the integer model artifact and its recipe, and the
hardware contract (accelerator configuration, register map, stream formats, weight image).
Nothing here imports a stage (``model``, ``quant``, ``hw``, ``sim``, ``host``) or the CLI.
"""
