"""A clock cycle at a time in the Amaranth simulator, signals by their Verilog names, for the
benches that also drive the generated Verilog under cocotb (``a__b`` is member ``b`` of ``a``)."""

from __future__ import annotations

from amaranth.lib import data


class PysimPort:
    """``await cycle(inputs) -> outputs``: set ``inputs``, read ``outputs`` (the names given), tick."""

    def __init__(self, ctx, dut, *, inputs, outputs):
        self.ctx, self.outputs, self.signals = ctx, tuple(outputs), {}
        for name in (*inputs, *outputs):
            sig = dut
            for part in name.split("__"):
                sig = getattr(sig, part)
            self.signals[name] = sig.as_value() if isinstance(sig, data.View) else sig

    async def cycle(self, inputs):
        for name, value in inputs.items():
            self.ctx.set(self.signals[name], value)
        out = {name: self.ctx.get(self.signals[name]) for name in self.outputs}
        await self.ctx.tick()
        return out
