"""The two tokenizers comparer makes itself (nothing is downloaded).

- ``build_tokenizer``: a byte-level BPE trained here with the ``tokenizers`` library, for the shipped
  demo pair (scripts/train_demo_pair.py) and for tests that save small models with a real tokenizer.
  Byte-level: any input text encodes.
- ``ByteTokenizer``: the stand-in for models built with random weights. Those come from bundled
  configs alone, so their real tokenizers are not here; speed and memory do not depend on which ids
  are fed, so text is encoded as its UTF-8 bytes (ids 0-255, valid for every vocabulary) and ids are
  decoded modulo 256. The output is noise either way; the card says the weights are random.
"""

from __future__ import annotations

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]  # ids 0, 1, 2


def build_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


class ByteTokenizer:
    def __call__(self, text: str) -> dict:
        return {"input_ids": list(text.encode("utf-8"))}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return bytes(i % 256 for i in ids).decode("utf-8", errors="replace")
