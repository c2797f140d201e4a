"""Training-free detectors: the classical references the learned detectors are checked against."""

from sardata.detect.cfar import CFARConfig, CFARDetector, cfar_detect, threshold_factor

__all__ = ["CFARConfig", "CFARDetector", "cfar_detect", "threshold_factor"]
