"""Model runtimes. `hf` is the only module (with training, later) that imports torch / transformers;
import it inside worker-side functions only, never at module level of web code."""
