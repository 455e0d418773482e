"""The watch-folder daemon: find media in folders, wait until files settle, queue them durably, transcribe them."""
