"""Top level with Xilinx-style AXI port names: AXI4-Stream in/out and an AXI4-Lite register file."""

from __future__ import annotations

from amaranth import Cat, ClockDomain, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import register_map
from lstmfpga.foundation.hw.register_map import Ctrl, Reg, Status
from lstmfpga.hw.rtl.axi_weight_reader import forward_axi, read_port_members
from lstmfpga.hw.rtl.core import LstmCore

AXIL_ADDR_BITS = 8


class LstmAcceleratorTop(wiring.Component):
    """The accelerator as Vivado expects an AXI IP: ``aclk``, ``aresetn``, ``s_axis_*`` (input:
    sequences and weight images), ``m_axis_*`` (output) and ``s_axi_*`` (AXI4-Lite control).

    The streams are ``config.stream_width`` bits wide and have no TKEEP: every packet is whole
    beats (:mod:`~lstmfpga.foundation.hw.stream_format` pads it), so all bytes are data.  With
    weights in DDR the core also has an AXI4 read master, ``m_axi_*`` (``config.ddr_width`` bits,
    one ID, reads only), to connect to an HP port; DDR_BASE_LO/HI and DDR_LENGTH say where the
    weight image lies.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = config
        ddr_ports = {}
        if config.ddr_weights:
            ddr_ports = read_port_members(config.ddr_width)
        super().__init__({
            **ddr_ports,
            "aclk": In(1), "aresetn": In(1),
            "s_axis_tdata": In(config.stream_width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(config.stream_width), "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "s_axi_awaddr": In(AXIL_ADDR_BITS), "s_axi_awvalid": In(1), "s_axi_awready": Out(1),
            "s_axi_wdata": In(32), "s_axi_wstrb": In(4), "s_axi_wvalid": In(1), "s_axi_wready": Out(1),
            "s_axi_bresp": Out(2), "s_axi_bvalid": Out(1), "s_axi_bready": In(1),
            "s_axi_araddr": In(AXIL_ADDR_BITS), "s_axi_arvalid": In(1), "s_axi_arready": Out(1),
            "s_axi_rdata": Out(32), "s_axi_rresp": Out(2), "s_axi_rvalid": Out(1), "s_axi_rready": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        m.submodules.core = core = LstmCore(config=cfg)
        m.d.comb += [core.i_stream.valid.eq(self.s_axis_tvalid), self.s_axis_tready.eq(core.i_stream.ready),
                     core.i_stream.payload.data.eq(self.s_axis_tdata), core.i_stream.payload.last.eq(self.s_axis_tlast),
                     self.m_axis_tvalid.eq(core.o_stream.valid), core.o_stream.ready.eq(self.m_axis_tready),
                     self.m_axis_tdata.eq(core.o_stream.payload.data), self.m_axis_tlast.eq(core.o_stream.payload.last)]

        timesteps = Signal(8, init=1)
        timeout = Signal(32, init=register_map.DEFAULT_TIMEOUT)
        m.d.comb += [core.timesteps.eq(timesteps), core.timeout.eq(timeout)]

        # write channel: address and data together, one response at a time
        do_write = Signal()
        m.d.comb += do_write.eq(self.s_axi_awvalid & self.s_axi_wvalid & ~self.s_axi_bvalid)
        m.d.comb += [self.s_axi_awready.eq(do_write), self.s_axi_wready.eq(do_write), self.s_axi_bresp.eq(0)]
        with m.If(do_write):
            m.d.sync += self.s_axi_bvalid.eq(1)
        with m.Elif(self.s_axi_bready):
            m.d.sync += self.s_axi_bvalid.eq(0)
        waddr = self.s_axi_awaddr[2:]
        wdata = self.s_axi_wdata
        ctrl_write = do_write & (waddr == Reg.CTRL >> 2)
        # the commands reach the core a cycle after the write, from registers: the bus's
        # handshake logic stays out of the core's start decisions
        for command, bit in ((core.start, Ctrl.START), (core.soft_reset, Ctrl.SOFT_RESET),
                             (core.load_weights, Ctrl.LOAD_WEIGHTS), (core.clear, Ctrl.CLEAR)):
            pulse = Signal(name=f"{bit.name.lower()}_pulse")
            m.d.sync += pulse.eq(ctrl_write & wdata[bit.bit_length() - 1])
            m.d.comb += command.eq(pulse)
        with m.If(do_write & (waddr == Reg.TIMESTEPS >> 2)):
            m.d.sync += timesteps.eq(wdata)
        with m.If(do_write & (waddr == Reg.TIMEOUT >> 2)):
            m.d.sync += timeout.eq(wdata)
        batch_register = {}
        if cfg.max_batch > 1:
            batch = Signal(32, init=1)
            batch_register = {Reg.BATCH: batch}
            with m.If(do_write & (waddr == Reg.BATCH >> 2)):
                m.d.sync += batch.eq(wdata)
            m.d.comb += core.batch.eq(batch)
        ddr_registers = {}
        if cfg.ddr_weights:
            ddr_registers = {Reg.DDR_BASE_LO: Signal(32, name="ddr_base_lo"),
                             Reg.DDR_BASE_HI: Signal(32, name="ddr_base_hi"),
                             Reg.DDR_LENGTH: Signal(32, name="ddr_length")}
            for offset, register in ddr_registers.items():
                with m.If(do_write & (waddr == offset >> 2)):
                    m.d.sync += register.eq(wdata)
            m.d.comb += [core.ddr_base.eq(Cat(ddr_registers[Reg.DDR_BASE_LO], ddr_registers[Reg.DDR_BASE_HI])),
                         core.ddr_length.eq(ddr_registers[Reg.DDR_LENGTH])]
            forward_axi(m, self, core)

        # read channel
        status = Signal(32)
        m.d.comb += status.eq(
            (core.busy * int(Status.BUSY)) | (core.done * int(Status.DONE)) |
            (core.weights_valid * int(Status.WEIGHTS_VALID)) | ((core.error != 0) * int(Status.ERROR)) |
            (core.loading * int(Status.LOADING)))
        shape = register_map.shape_registers(cfg)
        values = {
            Reg.ID: register_map.CORE_ID, Reg.VERSION: register_map.CORE_VERSION, Reg.STATUS: status,
            Reg.ERROR: core.error, Reg.TIMESTEPS: timesteps, Reg.CYCLES: core.cycles,
            Reg.TIMEOUT: timeout, Reg.RUN_CYCLES: core.run_cycles, **ddr_registers, **batch_register,
            **{Reg[name]: value for name, value in shape.items()},
            **{register_map.hash_offset(i): core.hash[32 * i:32 * (i + 1)] for i in range(register_map.HASH_WORDS)},
        }
        do_read = Signal()
        m.d.comb += [do_read.eq(self.s_axi_arvalid & ~self.s_axi_rvalid), self.s_axi_arready.eq(do_read),
                     self.s_axi_rresp.eq(0)]
        with m.If(do_read):
            m.d.sync += [self.s_axi_rvalid.eq(1), self.s_axi_rdata.eq(0)]
            with m.Switch(self.s_axi_araddr[2:]):
                for offset, value in values.items():
                    with m.Case(int(offset) >> 2):
                        m.d.sync += self.s_axi_rdata.eq(value)
        with m.Elif(self.s_axi_rready):
            m.d.sync += self.s_axi_rvalid.eq(0)
        return m
