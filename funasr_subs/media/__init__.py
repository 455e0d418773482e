"""Media → audio, the first stage of the pipeline: what a file holds (probe, info, ffreport), the one media file it
is opened as (inputs), ffmpeg run as a byte stream (ffmpeg, audio, early, mp4head), and the speech heard in that
audio on its way to the server (vad, activity)."""
