"""lstmfpga.host"""
