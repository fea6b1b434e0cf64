#!/usr/bin/env bash
# Trains the small SentencePiece model tests/data/spm/tiny.model with Debian's spm_train and writes
# tests/data/spm/reference-ids.json: the ids, pieces and decoded text that Debian's python3-sentencepiece
# (not seqrun) gives for a few strings. tests/unit/test_tokenizer.cpp checks seqrun against them.
#
# Only needed to regenerate the committed fixture (the test itself needs only libsentencepiece):
#   tools/install-deps.sh --with-fixture-tools     # sentencepiece, python3-sentencepiece, dict-gcide
#   tests/reference/gen_spm_model.sh
#
# Corpus: the first 60,000 lines of the GNU Collaborative International Dictionary of English (Debian's
# dict-gcide, /usr/share/dictd/gcide.dict.dz, a dictzip file that zcat reads). Model: BPE, vocabulary 1000,
# byte fallback (so characters the corpus lacks, CJK and emoji, become <0xXX> byte pieces, as in Llama's
# tokenizer), one training thread so that the result is the same on every run.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=$PWD/tests/data/spm
# Train inside a scratch folder under fixed relative names: the model records its input and prefix names.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zcat /usr/share/dictd/gcide.dict.dz | sed -n '1,60000p' >"$work"/gcide.txt  # sed reads it all: no SIGPIPE
(cd "$work" && spm_train --input=gcide.txt --model_prefix=tiny --vocab_size=1000 --model_type=bpe \
  --byte_fallback=true --num_threads=1 --input_sentence_size=0 --minloglevel=2 >/dev/null 2>&1)
mkdir -p "$out"
cp "$work"/tiny.model "$out"/tiny.model

/usr/bin/python3 - "$out" <<'PY'
import json
import sys

import sentencepiece as spm

out = sys.argv[1]
sp = spm.SentencePieceProcessor(model_file=out + "/tiny.model")
texts = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces,\ttabs and\nnewlines,   runs   of  spaces  ",
    "naïve café résumé — Ångström",
    "日本語のテキスト",
    "emoji 🙂🚀 end",
    "",
    "I've, you're: 42 dictionaries (1913 Webster)!",
]
cases = []
for text in texts:
    ids = sp.encode(text, out_type=int)
    cases.append({
        "text": text,
        "ids": ids,
        "pieces": [sp.id_to_piece(i) for i in ids],
        "decoded": sp.decode(ids),
    })
meta = {
    "generator": "tests/reference/gen_spm_model.sh with python3-sentencepiece " + spm.__version__,
    "vocab_size": sp.get_piece_size(),
    "bos_id": sp.bos_id(),
    "eos_id": sp.eos_id(),
    "unk_id": sp.unk_id(),
    "cases": cases,
}
with open(out + "/reference-ids.json", "w", encoding="utf-8") as f:
    json.dump(meta, f, ensure_ascii=False, indent=1)
    f.write("\n")
print("wrote tests/data/spm/tiny.model (%d pieces) and tests/data/spm/reference-ids.json (%d strings)" %
      (sp.get_piece_size(), len(cases)))
PY
