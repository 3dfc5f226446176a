"""lstmfpga.quant"""
