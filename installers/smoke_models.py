"""Run by smoke.sh inside the frozen bundle (`studio -c`): the causal-LM families the spec keeps
(installers/studio.spec TRANSFORMERS_MODELS) resolve frozen, for every architecture the trainer
has LoRA targets for: config class, causal-LM class (its modeling module imports), tokenizer
classes by the names tokenizer_config.json files use. Nothing is downloaded or built."""

from transformers import CONFIG_MAPPING, MODEL_FOR_CAUSAL_LM_MAPPING
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

from studio.train.config import TARGETS

families = sorted(t for t in TARGETS if t in CONFIG_MAPPING_NAMES)
for model_type in families:
    MODEL_FOR_CAUSAL_LM_MAPPING[CONFIG_MAPPING[model_type]]  # KeyError / ImportError if dropped
TOKENIZERS = (
    "LlamaTokenizer", "LlamaTokenizerFast", "GPT2Tokenizer", "GPT2TokenizerFast",
    "Qwen2Tokenizer", "Qwen2TokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast",
    "CodeGenTokenizer", "CodeGenTokenizerFast", "GPTNeoXTokenizer", "GPTNeoXTokenizerFast",
    "CohereTokenizer", "CohereTokenizerFast", "PreTrainedTokenizerFast",
)  # fmt: skip
missing = [name for name in TOKENIZERS if tokenizer_class_from_name(name) is None]
assert not missing, f"tokenizer classes missing from the bundle: {missing}"
print(f"  {len(families)} causal-LM families and {len(TOKENIZERS)} tokenizer classes resolve")
