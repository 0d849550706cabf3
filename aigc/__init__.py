"""Cross-cutting parts of aigc-jobs: typed settings, artifact storage, the model catalogue,
the embedded servers and the `aigc` command line."""
