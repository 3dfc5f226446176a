"""The embedded synthetic dataset: moving cartoon faces, real and forged, in ForgeryNet's layout."""
