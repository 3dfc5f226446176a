"""The ``lstmfpga`` console script: one subcommand per stage, each registered by its own package."""
