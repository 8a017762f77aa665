"""The training tests' fixtures (defined in train_helpers, which test modules also
import plain helpers from)."""

from train_helpers import small_config, tiny_student, tiny_tokenizer  # noqa: F401
