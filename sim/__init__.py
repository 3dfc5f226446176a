"""lstmfpga.sim"""
