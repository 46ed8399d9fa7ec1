"""What is judged: every claim of both papers as a verdict on a statistic (`claims`), each rule's error rate measured
(`calibration`), the scorecard a run writes (`scorecard`), the paper's open questions (`beyond`), and the base-model
claims on the sixteen Pythia ladders (`pythia_suite`)."""
