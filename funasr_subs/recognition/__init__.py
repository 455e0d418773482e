"""Recognition: the websocket client, the pool of FunASR servers and its dispatch, split and merge.

Kept empty on purpose: ``config`` imports :mod:`funasr_subs.recognition.endpoint` (pure URL parsing), and the
pipeline imports :func:`funasr_subs.recognition.run.recognise`, so nothing here may import either of them.
"""
