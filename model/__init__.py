"""lstmfpga.model"""
