"""Screening of candidate crystals with a deep ensemble of graph networks (GNoME's filter; pure, no Django).

Gnomon trains its own matgl models (M3GNet or TensorNet property models built from scratch) on the energies of one
scheme, predicts the mean and standard deviation over the ensemble in batches, and picks candidates for DFT with a
stated acquisition rule. Structures in, numbers out; the Django layer lives in ``discovery.services.screening``.
"""
