"""The FPGA LSTM at batch 1 against torch.nn.LSTM on this CPU and against a GPU.

    python bench/fpga_vs_cpu.py [--input 2048 --hidden 512 --layers 1 --steps 16 --weight-bits 4]

FPGA figures are the planned configuration's cycle model ÷ its clock (the cycle model is
checked against the core's cycle counter in simulation; see bench/hw.py). CPU figures are
measured here. GPU figures are measured when CUDA is available (plain call and CUDA-graph
replay, fp16 cuDNN); otherwise the H100 reference from issue #6 is printed and labelled so.
"""

from __future__ import annotations

import argparse
import platform

import torch

from lstmfpga.cli.lstm_latency import GPU_REFERENCE, cpu_lstm_us, median_us
from shape_args import add_shape_arguments


def gpu_lstm_us(I, H, L, T, repeats=200) -> dict:
    """fp16 cuDNN LSTM at batch 1: a plain call, and a replay of a captured CUDA graph."""
    dev = torch.device("cuda")
    lstm = torch.nn.LSTM(I, H, num_layers=L, batch_first=True).to(dev).half().eval()
    x = torch.randn(1, T, I, device=dev, dtype=torch.half)

    def plain():
        with torch.inference_mode():
            lstm(x)
        torch.cuda.synchronize()

    out = {f"fp16 H={H} plain call": median_us(plain, repeats, warmup=20)}
    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(3):
            lstm(static_x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        lstm(static_x)

    def replay():
        graph.replay()
        torch.cuda.synchronize()

    out[f"fp16 H={H} CUDA graph"] = median_us(replay, repeats, warmup=20)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shape_arguments(p, act_bits=False)
    p.add_argument("--boards", default="zcu104,kv260")
    p.add_argument("--stream-width", type=int, choices=(32, 64, 128), default=128,
                   help="AXI-Stream width of today's core (the v1 rows keep 32 bits)")
    args = p.parse_args(argv)
    I, H, L, T = args.input, args.hidden, args.layers, args.steps

    import dataclasses

    from lstmfpga.hw.boards import get_board
    from lstmfpga.hw.plan import make_plan, shape_config

    template = shape_config(input_size=I, hidden_size=H, num_layers=L, weight_bits=args.weight_bits)
    rows = []  # (name, µs per sequence, µs per step, note)
    for key in args.boards.split(","):
        board = get_board(key)
        plan = make_plan(dataclasses.replace(template, stream_width=args.stream_width), board, timesteps=T,
                         compare=False)
        c = plan.config
        rows.append((f"FPGA {plan.board.name} {c.mode} P={c.lanes} k={c.macs_per_dsp} S={c.column_sets}"
                     + (" W2" if c.weight_ports > 1 else "")
                     + (f" fold {c.fold_lanes or c.lanes}x{c.fold_rows}" if c.fold_lanes or c.fold_rows else "")
                     + f" @{plan.clock_mhz:g} MHz (compute)",
                     plan.us_per_step * T, plan.us_per_step,
                     f"cycle model, MAC utilisation {plan.cycles.utilization:.1%}, "
                     f"{plan.dsp_bound_fraction():.1%} of the DSP-bound limit"))
        rows.append((f"FPGA {plan.board.name} incl. {c.stream_width}-bit streams", plan.us_per_sequence,
                     plan.us_per_sequence / T, "cycle model, stall-free stream"))
        if c.column_sets > 1:
            one = make_plan(dataclasses.replace(template, stream_width=args.stream_width), board, timesteps=T,
                            compare=False, column_sets=1)
            rows.append((f"FPGA {one.board.name} one column set: {one.config.mode} P={one.config.lanes} "
                         f"k={one.config.macs_per_dsp}", one.us_per_sequence, one.us_per_sequence / T,
                         "cycle model, streams included (rows only: at most 4H lanes)"))
        split = make_plan(dataclasses.replace(template, stream_width=args.stream_width), board, timesteps=T,
                          compare=False, mode="split", tail_units=2)
        sc = split.config
        rows.append((f"FPGA {split.board.name} split, two tail units: P={sc.lanes} k={sc.macs_per_dsp} "
                     f"S={sc.column_sets} (recurrence)", split.us_per_step * T, split.us_per_step,
                     "cycle model, compute only: the host computes layer 0's W_x·x"))
        v1 = make_plan(template, board, timesteps=T, compare=False, macs_per_dsp=1, column_sets=1)
        rows.append((f"FPGA {v1.board.name} v1: {v1.config.mode} P={v1.config.lanes} k=1, 32-bit streams",
                     v1.us_per_sequence, v1.us_per_sequence / T, "cycle model, one MAC per DSP (before packing)"))
    cpu = cpu_lstm_us(I, H, L, T)
    rows.append((f"torch.nn.LSTM fp32 CPU ({torch.get_num_threads()} threads)", cpu, cpu / T,
                 f"measured, {platform.processor() or platform.machine()}"))
    if torch.cuda.is_available():
        for name, us in gpu_lstm_us(I, H, L, T).items():
            rows.append((f"GPU {name}", us, us / T, f"measured, {torch.cuda.get_device_name()}"))
    elif (I, L, T) == (2048, 1, 16):
        for name, us in GPU_REFERENCE.items():
            if f"H={H} " in name:
                rows.append((f"GPU {name}", us, us / T, "reference: H100, issue #6 (no GPU here)"))

    print(f"# batch-1 LSTM latency: I={I} H={H} L={L} T={T}, {args.weight_bits}-bit weights on the FPGA")
    base = rows[0][1]
    print(f"{'':<58}{'µs/seq':>10}{'µs/step':>10}{'vs FPGA':>9}  note")
    for name, seq, step, note in rows:
        print(f"{name:<58}{seq:>10.1f}{step:>10.2f}{seq / base:>8.2f}x  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
