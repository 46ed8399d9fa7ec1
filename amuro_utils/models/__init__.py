"""What runs a model: checkpoint ladders and their hub revisions (`ladder`), the tiny profile's self-pre-trained ladder
(`tiny_ladder`), fine-tuning (`train`), k-shot evaluation and metrics (`evaluate`, `vllm_backend`), Springer et
al.'s sensitivity probe (`sensitivity`), linear probes on hidden states (`probes`), and published evaluations read
as records (`lmeval`)."""
