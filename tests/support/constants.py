"""Constants shared by test modules in several folders."""

BUILTIN = ("datafold", "camb", "segment_qa", "doc_translator")
#: the vendor keys the provider tests configure; no cassette may contain any of them
CASSETTE_SECRETS = {name: f"cassette-secret-{name}-7f3a9c" for name in BUILTIN}
