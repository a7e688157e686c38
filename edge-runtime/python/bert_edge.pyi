"""Run distilled BERT classifier bundles with real adaptive early exit."""

import os
from typing import Dict, List, Optional, Sequence, Union

__version__: str
TRACT_VERSION: str

class BundleError(ValueError):
    """The bundle cannot be used: damaged, inconsistent with itself, or not
    the pinned one. The message names the file."""

class Prediction:
    """The answer for one text (the CLI's JSON line, plus probs and logits)."""

    @property
    def label(self) -> str: ...
    @property
    def prob(self) -> float:
        """The predicted label's probability at the exit."""
    @property
    def exit_layer(self) -> int:
        """The layer after which the text left (1-based)."""
    @property
    def latency_us(self) -> int:
        """Wall time of the segments the text went through, in microseconds."""
    @property
    def truncated(self) -> bool:
        """The text had more tokens than max_seq_len and was cut."""
    @property
    def probs(self) -> List[float]:
        """Every label's probability at the exit, in Classifier.labels order."""
    @property
    def logits(self) -> List[float]:
        """Every label's logit at the exit, in Classifier.labels order."""
    def as_dict(self) -> Dict[str, Union[str, float, int, bool, List[float]]]: ...

class Classifier:
    """A bundle loaded for classifying, with the exit policy every text runs
    under (the bundle's default without a policy argument; at most one of
    speed, patience, exit_layer, full).

    Raises FileNotFoundError for a missing bundle, BundleError for any other
    fault of it, ValueError for a policy out of range, TypeError for an
    argument of the wrong type."""

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        *,
        speed: Optional[float] = None,
        patience: Optional[int] = None,
        exit_layer: Optional[int] = None,
        full: bool = False,
        expect_digest: Optional[str] = None,
        lazy_plans: bool = False,
        one_text_plans: bool = False,
        compute: str = "auto",
        matmul_kernel: str = "auto",
    ) -> None: ...
    def classify(self, text: str) -> Prediction:
        """Classify one text (batch 1); no layer after its exit runs."""
    def classify_batch(self, texts: Sequence[str], batch_size: int = 8) -> List[Prediction]:
        """Classify texts batch_size at a time; texts that exit leave the batch."""
    @property
    def labels(self) -> List[str]: ...
    @property
    def num_layers(self) -> int: ...
    @property
    def max_seq_len(self) -> int: ...
    @property
    def compute(self) -> str:
        """The float type the graphs compute in: "f32", "f16", "f16-products" or "mixed-f16"."""
    @property
    def precision(self) -> str:
        """"f32", "f16" or "int8"."""
    @property
    def policy(self) -> str:
        """The policy texts run under: "entropy 0.3", "patience 2", "layer 1", "full"."""
    @property
    def default_policy(self) -> str: ...
    @property
    def digest(self) -> str:
        """The bundle's digest (what expect_digest pins)."""
    @property
    def path(self) -> "os.PathLike[str]": ...

def set_threads(n: int) -> None:
    """Run the matrix products on n threads (process-wide; 1 by default)."""
