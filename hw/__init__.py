"""lstmfpga.hw"""
