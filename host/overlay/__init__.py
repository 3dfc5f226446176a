"""Packaging the core as a Vivado IP and the board's block design (TCL generated here, run elsewhere)."""
